// The Workers-compatible surface of the JS runtime. It runs once per VM, before the
// function's module; the Go side calls __dispatch per request and reads the outcome from
// host("settle", …). The one host function, __host (host.go), is taken private here.
"use strict";
(function (g) {
  const host = g.__host;
  delete g.__host;
  const enc = (s) => unescape(encodeURIComponent(s)); // UTF-8 bytes as a latin1 string
  const dec = (b) => { try { return decodeURIComponent(escape(b)); } catch (e) { return b; } };
  const bin2u8 = (b) => { const u = new Uint8Array(b.length); for (let i = 0; i < b.length; i++) u[i] = b.charCodeAt(i) & 255; return u; };
  const u82bin = (u) => { let s = ""; for (let i = 0; i < u.length; i += 8192) s += String.fromCharCode.apply(null, u.subarray(i, i + 8192)); return s; };
  const toU8 = (x) => x instanceof Uint8Array ? x : x instanceof ArrayBuffer ? new Uint8Array(x) : ArrayBuffer.isView(x) ? new Uint8Array(x.buffer, x.byteOffset, x.byteLength) : null;

  class Headers {
    constructor(init) {
      this._h = new Map();
      this._raw = null; // a request's headers as the host sent them, parsed on first use
      this._dirty = false;
      if (init == null) return;
      if (init instanceof Headers) { for (const [k, v] of init._m) this._h.set(k, v.slice()); return; }
      if (Array.isArray(init)) { for (const [k, v] of init) this.append(k, v); return; }
      for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    get _m() {
      const raw = this._raw;
      if (raw !== null) {
        // "name\0value\0name\0value", names lower-cased, one pair per value.
        this._raw = null;
        const p = raw.split("\0"), m = this._h;
        for (let i = 0; i + 1 < p.length; i += 2) { const a = m.get(p[i]); if (a) a.push(p[i + 1]); else m.set(p[i], [p[i + 1]]); }
      }
      return this._h;
    }
    get(k) { const v = this._m.get(String(k).toLowerCase()); return v === undefined ? null : v.join(", "); }
    getSetCookie() { return (this._m.get("set-cookie") || []).slice(); }
    has(k) { return this._m.has(String(k).toLowerCase()); }
    set(k, v) { this._dirty = true; this._m.set(String(k).toLowerCase(), [String(v)]); }
    append(k, v) { this._dirty = true; k = String(k).toLowerCase(); const a = this._m.get(k); if (a) a.push(String(v)); else this._m.set(k, [String(v)]); }
    delete(k) { this._dirty = true; this._m.delete(String(k).toLowerCase()); }
    forEach(f, self) { for (const [k, v] of this) f.call(self, v, k, this); }
    *entries() { for (const k of [...this._m.keys()].sort()) yield [k, this.get(k)]; }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    _wire() { const o = {}; for (const [k, v] of this._m) o[k] = v; return o; }
  }

  // Streams: ReadableStream, WritableStream and TransformStream as far as functions use them to
  // read a body in chunks, to answer with a body made as it goes (a ReadableStream, or the
  // readable side of a TransformStream) and to pipe one into another. Queues hold chunks;
  // backpressure is the host's (a streamed response waits for the client).
  class ReadableStream {
    constructor(src) {
      src = src || {};
      this._src = src; this._q = []; this._waiters = []; this._closed = false; this._errored = false; this._err = undefined;
      this._pulling = false; this._started = false; this._locked = false; this._disturbed = false;
      this._closedP = new Promise((res, rej) => { this._closeRes = res; this._closeRej = rej; });
      this._closedP.catch(() => {});
      const st = this;
      this._c = {
        enqueue(ch) { if (st._closed || st._errored) throw new TypeError("ReadableStream: enqueue after close"); const w = st._waiters.shift(); if (w) w.resolve({ value: ch, done: false }); else st._q.push(ch); },
        close() { if (st._closed) return; st._closed = true; if (st._q.length === 0) st._flush(); },
        error(e) { if (st._errored || st._closed) return; st._errored = true; st._err = e; st._q = []; for (const w of st._waiters.splice(0)) w.reject(e); st._closeRej(e); },
        get desiredSize() { return 1 - st._q.length; },
      };
      let r;
      try { r = src.start ? src.start(this._c) : undefined; } catch (e) { this._c.error(e); return; }
      Promise.resolve(r).then(() => { this._started = true; this._pull(); }, (e) => this._c.error(e));
    }
    _flush() { for (const w of this._waiters.splice(0)) w.resolve({ value: undefined, done: true }); this._closeRes(); }
    _pull() {
      if (!this._started || this._pulling || this._closed || this._errored || !this._src.pull || this._waiters.length === 0) return;
      this._pulling = true;
      let r;
      try { r = this._src.pull(this._c); } catch (e) { this._c.error(e); return; }
      Promise.resolve(r).then(() => { this._pulling = false; this._pull(); }, (e) => this._c.error(e));
    }
    _read() {
      this._disturbed = true;
      if (this._q.length) { const value = this._q.shift(); if (this._closed && this._q.length === 0) this._flush(); return Promise.resolve({ value, done: false }); }
      if (this._errored) return Promise.reject(this._err);
      if (this._closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => { this._waiters.push({ resolve, reject }); this._pull(); });
    }
    get locked() { return this._locked; }
    getReader() {
      if (this._locked) throw new TypeError("ReadableStream is locked to a reader");
      this._locked = true;
      const st = this;
      let released = false;
      return {
        read() { return released ? Promise.reject(new TypeError("the reader was released")) : st._read(); },
        releaseLock() { released = true; st._locked = false; },
        cancel(reason) { return st.cancel(reason, true); },
        get closed() { return st._closedP; },
      };
    }
    cancel(reason, fromReader) {
      if (this._locked && !fromReader) return Promise.reject(new TypeError("ReadableStream is locked to a reader"));
      this._q = []; this._closed = true; this._flush();
      return Promise.resolve(this._src.cancel ? this._src.cancel(reason) : undefined).then(() => undefined);
    }
    async *[Symbol.asyncIterator]() {
      const r = this.getReader();
      try { for (;;) { const { value, done } = await r.read(); if (done) return; yield value; } } finally { r.releaseLock(); }
    }
    values() { return this[Symbol.asyncIterator](); }
    async pipeTo(dest) {
      const r = this.getReader(), w = dest.getWriter();
      try { for (;;) { const { value, done } = await r.read(); if (done) break; await w.write(value); } await w.close(); }
      catch (e) { await w.abort(e); throw e; }
      finally { r.releaseLock(); w.releaseLock(); }
    }
    pipeThrough(t) { this.pipeTo(t.writable).catch(() => {}); return t.readable; }
    tee() {
      const r = this.getReader(); let ca, cb;
      const a = new ReadableStream({ start(c) { ca = c; } }), b = new ReadableStream({ start(c) { cb = c; } });
      (async () => { try { for (;;) { const { value, done } = await r.read(); if (done) { ca.close(); cb.close(); return; } ca.enqueue(value); cb.enqueue(value); } } catch (e) { ca.error(e); cb.error(e); } })();
      return [a, b];
    }
  }

  class WritableStream {
    constructor(sink) {
      this._sink = sink || {}; this._locked = false; this._closed = false; this._chain = Promise.resolve();
      this._c = { error: (e) => { this._err = e; } };
      const r = this._sink.start ? this._sink.start(this._c) : undefined;
      this._chain = Promise.resolve(r);
    }
    get locked() { return this._locked; }
    _op(f) { const p = this._chain.then(() => { if (this._err !== undefined) throw this._err; return f(); }); this._chain = p.catch(() => {}); return p; }
    getWriter() {
      if (this._locked) throw new TypeError("WritableStream is locked to a writer");
      this._locked = true;
      const st = this;
      return {
        write(ch) { if (st._closed) return Promise.reject(new TypeError("WritableStream is closed")); return st._op(() => st._sink.write ? st._sink.write(ch, st._c) : undefined); },
        close() { st._closed = true; return st._op(() => st._sink.close ? st._sink.close() : undefined); },
        abort(reason) { st._closed = true; return Promise.resolve(st._sink.abort ? st._sink.abort(reason) : undefined); },
        releaseLock() { st._locked = false; },
        get ready() { return Promise.resolve(); },
        get closed() { return st._chain; },
        get desiredSize() { return 1; },
      };
    }
  }

  class TransformStream {
    constructor(t) {
      t = t || {};
      let rc;
      this.readable = new ReadableStream({ start(c) { rc = c; } });
      const tc = { enqueue: (ch) => rc.enqueue(ch), error: (e) => rc.error(e), terminate: () => rc.close(), get desiredSize() { return rc.desiredSize; } };
      if (t.start) t.start(tc);
      this.writable = new WritableStream({
        write: (ch) => t.transform ? t.transform(ch, tc) : rc.enqueue(ch),
        close: async () => { if (t.flush) await t.flush(tc); rc.close(); },
        abort: (e) => rc.error(e),
      });
    }
  }

  // readAllStream reads a stream's chunks (strings as UTF-8, BufferSources as bytes) into one
  // latin1 string of bytes.
  const readAllStream = async (st) => {
    const r = st.getReader(); let out = "";
    for (;;) {
      const { value, done } = await r.read();
      if (done) break;
      if (typeof value === "string") out += enc(value);
      else { const u = toU8(value); if (!u) throw new TypeError("a body stream's chunks must be strings or BufferSources"); out += u82bin(u); }
    }
    r.releaseLock();
    return out;
  };
  // hostBodyStream is a request's body as the host reads it, 64 KiB at a time.
  const hostBodyStream = () => new ReadableStream({
    pull(c) {
      const b = host("bodyChunk");
      if (typeof b === "string") c.enqueue(bin2u8(b));
      else if (b === 0) c.close();
      else throw new Error(host("bodyError"));
    },
  });

  // Body holds text (a JS string) or bin (a latin1 string of bytes) or a lazy host source, or a
  // ReadableStream (_stream) once the body is read as one, or made from one.
  class Body {
    _initBody(b) {
      this._text = null; this._bin = null; this._lazy = null; this._stream = null; this.bodyUsed = false; this._null = false;
      if (b == null) { this._text = ""; this._null = true; return; }
      if (typeof b === "string") { this._text = b; return; }
      if (b instanceof ReadableStream) { this._stream = b; return; }
      if (b instanceof URLSearchParams) { this._text = b.toString(); return; }
      const u = toU8(b);
      if (u) { this._bin = u82bin(u); return; }
      this._text = String(b);
    }
    get body() {
      if (this._null) return null;
      if (this._stream === null) {
        if (this._lazy) { host("bodyOpen"); this._stream = hostBodyStream(); }
        else { const b = this._bin !== null ? this._bin : enc(this._text || ""); this._stream = new ReadableStream({ start(c) { if (b.length) c.enqueue(bin2u8(b)); c.close(); } }); }
        this._lazy = null; this._text = null; this._bin = null;
      }
      return this._stream;
    }
    _take() {
      if (this._lazy) { const t = this._lazy(); this._lazy = null; if (t.bin) this._bin = t.s; else this._text = t.s; }
      this.bodyUsed = true;
    }
    async _takeAll() {
      if (this._stream !== null) {
        if (this._stream._locked || this._stream._disturbed) throw new TypeError("the body has already been read");
        this._bin = await readAllStream(this._stream); this._stream = null;
      }
      this._take();
    }
    async text() { await this._takeAll(); return this._text !== null ? this._text : dec(this._bin); }
    async json() { return JSON.parse(await this.text()); }
    async arrayBuffer() { await this._takeAll(); const b = this._bin !== null ? this._bin : enc(this._text); return bin2u8(b).buffer; }
    async bytes() { return new Uint8Array(await this.arrayBuffer()); }
  }

  class Request extends Body {
    constructor(input, init) {
      super();
      init = init || {};
      if (input instanceof Request) {
        this.url = input.url; this.method = input.method; this.headers = new Headers(input.headers);
        this._text = input._text; this._bin = input._bin; this._lazy = input._lazy; this._stream = input._stream; this._null = input._null; this.bodyUsed = false;
      } else {
        this.url = String(input); this.method = "GET"; this.headers = new Headers();
        this._text = ""; this._bin = null; this._lazy = null; this._stream = null; this._null = true; this.bodyUsed = false;
      }
      if (init.method) this.method = String(init.method).toUpperCase();
      if (init.headers) this.headers = new Headers(init.headers);
      if ("body" in init) this._initBody(init.body);
      this.redirect = init.redirect || "follow";
    }
    clone() { return new Request(this); }
  }

  const statusText = { 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable" };
  class Response extends Body {
    constructor(body, init) {
      super();
      init = init || {};
      this._initBody(body);
      this.status = init.status === undefined ? 200 : init.status | 0;
      if (this.status < 200 || this.status > 599) throw new RangeError("Response status must be in 200-599, got " + init.status);
      this.statusText = init.statusText !== undefined ? String(init.statusText) : (statusText[this.status] || "");
      this.headers = new Headers(init.headers);
      if (typeof body === "string" && !this.headers.has("content-type")) this.headers.set("content-type", "text/plain;charset=UTF-8");
      this.url = "";
      this.redirected = false;
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    clone() {
      const r = new Response(null, this);
      if (this._stream !== null) { const [a, b] = this._stream.tee(); this._stream = a; r._stream = b; }
      r._text = this._text; r._bin = this._bin; r._null = this._null; return r;
    }
    static json(data, init) {
      const r = new Response(JSON.stringify(data), init);
      r.headers.set("content-type", "application/json");
      return r;
    }
    static redirect(url, status) { return new Response(null, { status: status || 302, headers: { location: String(url) } }); }
  }

  class URLSearchParams {
    constructor(init) {
      this._l = [];
      if (init == null) return;
      if (typeof init === "string") {
        if (init[0] === "?") init = init.slice(1);
        for (const p of init.split("&")) {
          if (!p) continue;
          const i = p.indexOf("=");
          const d = (s) => { try { return decodeURIComponent(s.replace(/\+/g, " ")); } catch (e) { return s; } };
          this._l.push(i < 0 ? [d(p), ""] : [d(p.slice(0, i)), d(p.slice(i + 1))]);
        }
      } else if (Array.isArray(init)) { for (const [k, v] of init) this._l.push([String(k), String(v)]); }
      else if (init instanceof URLSearchParams) { this._l = init._l.map((e) => e.slice()); }
      else { for (const k of Object.keys(init)) this._l.push([k, String(init[k])]); }
    }
    get(k) { const e = this._l.find((e) => e[0] === k); return e ? e[1] : null; }
    getAll(k) { return this._l.filter((e) => e[0] === k).map((e) => e[1]); }
    has(k) { return this._l.some((e) => e[0] === k); }
    set(k, v) { const i = this._l.findIndex((e) => e[0] === k); if (i < 0) { this._l.push([k, String(v)]); return; } this._l[i][1] = String(v); this._l = this._l.filter((e, j) => j <= i || e[0] !== k); this._u && this._u._sync(); }
    append(k, v) { this._l.push([String(k), String(v)]); this._u && this._u._sync(); }
    delete(k) { this._l = this._l.filter((e) => e[0] !== k); this._u && this._u._sync(); }
    sort() { this._l.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._u && this._u._sync(); }
    forEach(f, self) { for (const [k, v] of this._l) f.call(self, v, k, this); }
    *entries() { for (const e of this._l) yield e.slice(); }
    *keys() { for (const e of this._l) yield e[0]; }
    *values() { for (const e of this._l) yield e[1]; }
    [Symbol.iterator]() { return this.entries(); }
    get size() { return this._l.length; }
    toString() {
      const e = (s) => encodeURIComponent(s).replace(/%20/g, "+");
      return this._l.map(([k, v]) => e(k) + "=" + e(v)).join("&");
    }
  }

  // URL: a subset of WHATWG URL for absolute http(s)-like URLs and relative references.
  const urlRE = /^([a-zA-Z][a-zA-Z0-9+.-]*:)(?:\/\/(?:([^:@\/?#]*)(?::([^@\/?#]*))?@)?(\[[^\]]*\]|[^:\/?#]*)(?::(\d*))?)?([^?#]*)(\?[^#]*)?(#.*)?$/;
  const defaultPorts = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443" };
  const normPath = (p) => {
    const out = [];
    for (const s of p.split("/").slice(1)) { if (s === "..") { out.pop(); } else if (s !== ".") out.push(s); }
    const last = p.split("/").pop();
    return "/" + out.join("/") + (last === "." || last === ".." ? "/" : "");
  };
  class URL {
    constructor(input, base) {
      input = String(input).trim();
      let m = urlRE.exec(input);
      if (!m) {
        if (base === undefined) throw new TypeError("Invalid URL: " + input);
        const b = base instanceof URL ? base : new URL(base);
        let path = b.pathname, search = b.search, hash = "";
        const h = input.indexOf("#"); if (h >= 0) { hash = input.slice(h); input = input.slice(0, h); }
        const q = input.indexOf("?"); if (q >= 0) { search = input.slice(q); input = input.slice(0, q); } else if (input) search = "";
        if (input.startsWith("//")) return new URL(b.protocol + input + search + hash);
        if (input.startsWith("/")) path = input;
        else if (input) path = path.slice(0, path.lastIndexOf("/") + 1) + input;
        input = b.protocol + "//" + b.host + normPath(path) + search + hash;
        m = urlRE.exec(input);
      }
      this.protocol = m[1].toLowerCase();
      this.username = m[2] || ""; this.password = m[3] || "";
      this.hostname = (m[4] || "").toLowerCase();
      this.port = m[5] && m[5] !== defaultPorts[this.protocol] ? m[5] : "";
      let p = m[6] || "";
      if (m[4] !== undefined) p = normPath(p || "/");
      this.pathname = p.replace(/[ "<>`{}]/g, (c) => encodeURIComponent(c));
      this.hash = m[8] && m[8] !== "#" ? m[8] : "";
      this._sp = new URLSearchParams(m[7] || "");
      this._sp._u = this;
      this._search = m[7] && m[7] !== "?" ? m[7] : "";
    }
    _sync() { const s = this._sp.toString(); this._search = s ? "?" + s : ""; }
    get search() { return this._search; }
    set search(v) { v = String(v); if (v && v[0] !== "?") v = "?" + v; this._search = v === "?" ? "" : v; this._sp._l = new URLSearchParams(v)._l; }
    get searchParams() { return this._sp; }
    get host() { return this.hostname + (this.port ? ":" + this.port : ""); }
    set host(v) { const i = String(v).lastIndexOf(":"); if (i > 0 && !String(v).endsWith("]")) { this.hostname = v.slice(0, i); this.port = v.slice(i + 1); } else { this.hostname = String(v); this.port = ""; } }
    get origin() { return this.protocol + "//" + this.host; }
    get href() {
      const auth = this.username ? this.username + (this.password ? ":" + this.password : "") + "@" : "";
      const sp = this.protocol === "http:" || this.protocol === "https:" || this.hostname ? "//" + auth + this.host : "";
      return this.protocol + sp + this.pathname + this.search + this.hash;
    }
    set href(v) { Object.assign(this, new URL(v)); this._sp._u = this; }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }

  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(s) { return bin2u8(enc(String(s === undefined ? "" : s))); }
  }
  class TextDecoder {
    constructor(label) { if (label && !/^utf-?8$/i.test(label)) throw new RangeError("TextDecoder: only utf-8 is supported"); }
    get encoding() { return "utf-8"; }
    decode(b) { if (b === undefined) return ""; return dec(u82bin(toU8(b))); }
  }

  const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  g.btoa = (s) => {
    s = String(s); let o = "";
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) throw new Error("btoa: the string has characters outside of Latin1");
      const n = (a << 16) | ((b || 0) << 8) | (c || 0);
      o += b64[n >> 18] + b64[(n >> 12) & 63] + (i + 1 < s.length ? b64[(n >> 6) & 63] : "=") + (i + 2 < s.length ? b64[n & 63] : "=");
    }
    return o;
  };
  g.atob = (s) => {
    s = String(s).replace(/[\t\n\f\r ]/g, "").replace(/=+$/, "");
    if (/[^A-Za-z0-9+/]/.test(s) || s.length % 4 === 1) throw new Error("atob: invalid base64");
    let o = "", n = 0, bits = 0;
    for (let i = 0; i < s.length; i++) { n = (n << 6) | b64.indexOf(s[i]); bits += 6; if (bits >= 8) { bits -= 8; o += String.fromCharCode((n >> bits) & 255); } }
    return o;
  };

  const fmt = (args) => args.map((a) => {
    if (typeof a === "string") return a;
    if (a instanceof Error) return a.stack ? a.name + ": " + a.message + "\n" + a.stack : String(a);
    try { const s = JSON.stringify(a); return s === undefined ? String(a) : s; } catch (e) { return String(a); }
  }).join(" ");
  const log = (lvl) => (...args) => host("log", lvl, fmt(args));
  g.console = { log: log(0), info: log(0), debug: log(-4), warn: log(4), error: log(8), trace: log(-4) };

  g.crypto = {
    getRandomValues(a) {
      const u = toU8(a);
      if (!u) throw new TypeError("getRandomValues: an integer typed array is required");
      if (u.length > 65536) throw new Error("getRandomValues: at most 65536 bytes");
      const r = host("random", u.length);
      for (let i = 0; i < u.length; i++) u[i] = r.charCodeAt(i);
      return a;
    },
    randomUUID() { return host("uuid"); },
    subtle: {
      // digest(algorithm, data): SHA-1, SHA-256, SHA-384 or SHA-512 of a BufferSource (or a
      // string, as UTF-8), resolving to an ArrayBuffer, as WebCrypto's does.
      async digest(algorithm, data) {
        const name = String(typeof algorithm === "object" && algorithm !== null ? algorithm.name : algorithm).toUpperCase();
        const u = typeof data === "string" ? bin2u8(enc(data)) : toU8(data);
        if (!u) throw new TypeError("crypto.subtle.digest: data must be a BufferSource");
        const r = host("digest", name, u82bin(u));
        if (r === undefined) throw new Error("crypto.subtle.digest: unsupported algorithm " + name + " (use SHA-1, SHA-256, SHA-384 or SHA-512)");
        return bin2u8(r).buffer;
      },
    },
  };

  // A host promise resolves with a JSON string: {error} or the call's result.
  const hostCall = async (p) => { const r = JSON.parse(await p); if (r.error !== undefined) throw new Error(r.error); return r; };

  const respFromWire = (w) => {
    const r = new Response(null, { status: w.status < 200 ? 200 : w.status, statusText: w.statusText, headers: w.headers });
    r.status = w.status; r._null = false;
    if (w.bin) r._bin = w.body; else r._text = w.body;
    r.url = w.url; r.redirected = !!w.redirected;
    return r;
  };
  g.fetch = async (input, init) => {
    const req = new Request(input, init);
    await req._takeAll();
    const w = { method: req.method, url: String(req.url), headers: req.headers._wire() };
    if (req._bin !== null) { w.body = req._bin; w.bin = true; } else if (req._text) w.body = req._text;
    return respFromWire(await hostCall(host("fetch", JSON.stringify(w))));
  };

  const kv = {
    async get(key, opts) {
      const type = typeof opts === "string" ? opts : (opts && opts.type) || "text";
      const r = await hostCall(host("kv", "get", JSON.stringify({ key: String(key) })));
      if (!r.found) return null;
      const v = r.bin ? r.value : r.value;
      if (type === "json") return JSON.parse(r.bin ? dec(v) : v);
      if (type === "arrayBuffer") return bin2u8(r.bin ? v : enc(v)).buffer;
      return r.bin ? dec(v) : v;
    },
    async getWithMetadata(key, opts) {
      const r = await hostCall(host("kv", "get", JSON.stringify({ key: String(key) })));
      const value = r.found ? await kv.get(key, opts) : null;
      return { value, metadata: r.found && r.metadata ? JSON.parse(r.metadata) : null };
    },
    async put(key, value, opts) {
      opts = opts || {};
      const w = { key: String(key) };
      if (typeof value === "string") w.value = value; else { const u = toU8(value); if (!u) throw new TypeError("KV put: value must be a string, ArrayBuffer or typed array"); w.value = u82bin(u); w.bin = true; }
      if (opts.expirationTtl) w.ttl = Number(opts.expirationTtl);
      if (opts.expiration) w.ttl = Math.max(1, Number(opts.expiration) - Date.now() / 1000);
      if (opts.metadata !== undefined) w.metadata = JSON.stringify(opts.metadata);
      await hostCall(host("kv", "put", JSON.stringify(w)));
    },
    async delete(key) { await hostCall(host("kv", "delete", JSON.stringify({ key: String(key) }))); },
    async list(opts) {
      opts = opts || {};
      const r = await hostCall(host("kv", "list", JSON.stringify({ prefix: String(opts.prefix || ""), cursor: String(opts.cursor || ""), limit: Number(opts.limit || 1000) })));
      return { keys: r.keys.map((k) => { const o = { name: k.name }; if (k.expiration) o.expiration = k.expiration; if (k.metadata) o.metadata = JSON.parse(k.metadata); return o; }), list_complete: !r.cursor, cursor: r.cursor || undefined };
    },
  };

  // Timers: a host sleep per timer, so a pending one keeps the event loop waiting (within the
  // invocation's timeout) and a cleared one simply does not run.
  let timerSeq = 0;
  const timers = new Map();
  const arm = (id, f, ms, args, repeat) => {
    host("sleep", Math.max(0, Number(ms) || 0)).then(() => {
      if (!timers.has(id)) return;
      if (repeat) arm(id, f, ms, args, true); else timers.delete(id);
      if (typeof f === "function") f(...args);
    });
  };
  g.setTimeout = (f, ms, ...args) => { const id = ++timerSeq; timers.set(id, true); arm(id, f, ms, args, false); return id; };
  g.setInterval = (f, ms, ...args) => { const id = ++timerSeq; timers.set(id, true); arm(id, f, Math.max(1, Number(ms) || 0), args, true); return id; };
  g.clearTimeout = g.clearInterval = (id) => { timers.delete(id); };
  g.queueMicrotask = (f) => { Promise.resolve().then(f); };

  g.ReadableStream = ReadableStream; g.WritableStream = WritableStream; g.TransformStream = TransformStream;
  g.Headers = Headers; g.Request = Request; g.Response = Response; g.URL = URL; g.URLSearchParams = URLSearchParams;
  g.TextEncoder = TextEncoder; g.TextDecoder = TextDecoder;

  const errWire = (e) => {
    if (e instanceof Error) return { error: e.name + ": " + e.message, stack: e.stack || "" };
    // The engine throws null when its heap is too full to make an InternalError.
    if (e === null) return { error: "Uncaught null (out of memory?)", oom: true, stack: "" };
    return { error: "Uncaught " + (typeof e === "string" ? e : JSON.stringify(e)), stack: "" };
  };
  const bodyWire = (w, r) => {
    r._take();
    if (r._bin !== null) { w.body = r._bin; w.bin = true; } else if (r._text) w.body = r._text;
  };

  // __dispatch runs one request through the module's default export and reports the outcome
  // with host("settle", json), then the settling of ctx.waitUntil promises with host("settle", null).
  let mod = null, handler = null;
  g.__loadFailed = (e) => {
    let s = e instanceof Error ? e.name + ": " + e.message : "Uncaught " + String(e);
    if (e && e.lineNumber) s += " (" + e.fileName + ":" + e.lineNumber + ":" + e.columnNumber + ")";
    if (e && e.stack) s += "\n" + String(e.stack).trimEnd();
    host("loadFailed", s);
  };
  g.__setModule = (m) => {
    if (m == null || (typeof m.fetch !== "function" && typeof m.request !== "function")) {
      g.__loadFailed(new TypeError("the module has no default export with a fetch(request, env, ctx) or request(req) method"));
      return;
    }
    mod = m;
    handler = typeof m.fetch === "function" ? m.fetch : m.request;
    host("loaded", typeof m.response === "function" ? 1 : 0);
  };
  // The environment (spec.template.env) is the same for every request of a revision: the host
  // sends it once per VM and again only when it changes.
  let env = { KV: kv };
  g.__setEnv = (w) => { env = Object.assign(JSON.parse(w), { KV: kv }); };
  const bodyLazy = () => { const b = JSON.parse(host("body")); if (b.error) throw new Error(b.error); return b; };
  // One invocation runs on a VM at a time: its state lives here rather than in closures
  // made per request. A VM whose invocation did not settle is discarded, so a late callback
  // of an earlier request never meets a later one's state.
  let cur = null; // {req, url, method, waits} or, in a response phase, {res, status, waits}
  let lastReq = null; // the request a response phase follows
  const ctx = { waitUntil(p) { const c = cur; if (c) (c.waits || (c.waits = [])).push(Promise.resolve(p)); }, passThroughOnException() {} };
  const settle = (c, s, stream) => {
    const waits = c.waits;
    cur = null;
    host("settle", s, waits ? waits.length : 0, stream ? 1 : 0);
    if (waits) Promise.allSettled(waits).then(() => host("settle", null, 0));
  };
  const fail = (e) => { const c = cur; if (c) settle(c, JSON.stringify(errWire(e))); };
  const done = (r) => {
    const c = cur;
    if (!c) return;
    let o;
    try {
      const req = c.req, h = req.headers;
      if (r === null || r === undefined) {
        // The common case, a filter passing the request unchanged, settles with "".
        if (req.url === c.url && req.method === c.method && !h._dirty) { settle(c, ""); return; }
        o = { pass: true, method: req.method };
        if (req.url !== c.url) o.url = req.url;
        if (h._dirty) o.headers = h._wire();
      } else {
        if (!(r instanceof Response)) throw new TypeError("the handler must return a Response, null or undefined, got " + (typeof r === "object" ? JSON.stringify(r) : typeof r));
        o = { status: r.status, headers: r.headers._wire() };
        if (r._stream !== null) {
          // A streamed body: the head goes now, the chunks as the stream yields them.
          const st = r._stream;
          if (st._locked || st._disturbed) throw new TypeError("the response's body stream has already been read");
          o.stream = true;
          settle(c, JSON.stringify(o), true);
          pump(st);
          return;
        }
        bodyWire(o, r);
      }
    } catch (e) { fail(e); return; }
    settle(c, JSON.stringify(o));
  };
  // pump hands a streamed response body to the host chunk by chunk, then its end (or error).
  // It starts once the host has the head (the first await), as the host waits for the client.
  const pump = async (st) => {
    const r = st.getReader();
    try {
      await hostCall(host("sleep", 0));
      for (;;) {
        const { value, done } = await r.read();
        if (done) break;
        let b;
        if (typeof value === "string") b = enc(value);
        else { const u = toU8(value); if (!u) throw new TypeError("a response body stream's chunks must be strings or BufferSources, got " + typeof value); b = u82bin(u); }
        if (b.length && !host("chunk", b)) { r.cancel(); return; } // the client went away
      }
      host("chunk", null);
    } catch (e) {
      host("chunk", null, errWire(e).error);
    }
  };
  // __dispatch(method, url, headers, hasBody) runs one request through the module's default
  // export. It builds the Request without its constructor's checks (the host's values are
  // valid) and settles in the call when the handler is synchronous, in one promise job when
  // it is async.
  g.__dispatch = (method, url, raw, hasBody) => {
    const req = Object.create(Request.prototype);
    const h = Object.create(Headers.prototype);
    h._h = new Map(); h._raw = raw; h._dirty = false;
    req.url = url; req.method = method; req.headers = h; req.redirect = "follow";
    req._text = null; req._bin = null; req._stream = null; req.bodyUsed = false;
    if (hasBody) { req._lazy = bodyLazy; req._null = false; } else { req._lazy = null; req._text = ""; req._null = true; }
    cur = { req, url, method, waits: null };
    lastReq = req;
    let p;
    try { p = handler.call(mod, req, env, ctx); } catch (e) { fail(e); return; }
    if (p !== null && typeof p === "object" && typeof p.then === "function") p.then(done, fail); else done(p);
  };

  // __respond(status, headers) runs the default export's response(response, request, env, ctx)
  // on the upstream's response head, after the request passed: it may edit response.headers
  // and response.status, or return a Response whose status and headers replace them. The
  // body goes to the client as the upstream sends it, unseen.
  const doneResponse = (r) => {
    const c = cur;
    if (!c) return;
    let o;
    try {
      if (r === null || r === undefined) r = c.res;
      else if (!(r instanceof Response)) throw new TypeError("response() must return a Response, null or undefined, got " + (typeof r === "object" ? JSON.stringify(r) : typeof r));
      if (r === c.res && r.status === c.status && !r.headers._dirty) { settle(c, ""); return; }
      o = { status: r.status | 0, headers: r.headers._wire() };
    } catch (e) { fail(e); return; }
    settle(c, JSON.stringify(o));
  };
  g.__respond = (status, raw) => {
    const res = Object.create(Response.prototype);
    const h = Object.create(Headers.prototype);
    h._h = new Map(); h._raw = raw; h._dirty = false;
    res.status = status; res.statusText = statusText[status] || ""; res.headers = h; res.url = ""; res.redirected = false;
    res._text = ""; res._bin = null; res._lazy = null; res._stream = null; res._null = true; res.bodyUsed = false;
    cur = { res, status, waits: null };
    let p;
    try { p = mod.response(res, lastReq, env, ctx); } catch (e) { fail(e); return; }
    if (p !== null && typeof p === "object" && typeof p.then === "function") p.then(doneResponse, fail); else doneResponse(p);
  };
})(globalThis);
