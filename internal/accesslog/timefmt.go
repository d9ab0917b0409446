package accesslog

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// defaultTimeFormat is what %START_TIME% prints without a format: Envoy's
// "2016-04-15T20:17:00.310Z" (UTC, milliseconds).
const defaultTimeFormat = "%Y-%m-%dT%H:%M:%S.%3fZ"

// timeFormat is a compiled START_TIME format: strftime specifiers (the subset Envoy documents
// and C's put_time offers, in UTC) and literal text.
type timeFormat struct {
	items []timeItem
	// jsonUnsafe: some literal needs JSON escaping (the specifiers write only ASCII letters,
	// digits, spaces and signs), so JSON output is escaped after rendering.
	jsonUnsafe bool
	// cache holds the latest second rendered, fractional digits left to patch: most lines of a
	// second then cost a copy.
	cache atomic.Pointer[timeCache]
}

type timeItem struct {
	spec   byte   // 0: literal; else the specifier letter ('f' fractional, 'S' with digits for %E#S)
	digits int    // 'f' and %E#S: how many fractional digits
	lit    string // spec 0
}

type timeCache struct {
	unix int64
	text []byte
	frac []fracPos // where the fractional digits go in text
}

type fracPos struct{ off, digits int }

// parseTimeFormat compiles a START_TIME format; errors carry the byte offset in f.
func parseTimeFormat(f string) (*timeFormat, int, error) {
	tf := &timeFormat{}
	lit := func(s string) {
		if n := len(tf.items); n > 0 && tf.items[n-1].spec == 0 {
			tf.items[n-1].lit += s
		} else {
			tf.items = append(tf.items, timeItem{lit: s})
		}
		for i := 0; i < len(s); i++ {
			if !jsonSafe(s[i]) {
				tf.jsonUnsafe = true
			}
		}
	}
	for i := 0; i < len(f); {
		c := f[i]
		if c != '%' {
			if !textSafe(c) && c != '\t' {
				return nil, i, fmt.Errorf("control character %q in the time format", c)
			}
			j := i + 1
			for j < len(f) && f[j] != '%' && (textSafe(f[j]) || f[j] == '\t') {
				j++
			}
			lit(f[i:j])
			i = j
			continue
		}
		if i+1 >= len(f) {
			return nil, i, fmt.Errorf("time format ends in a lone %%")
		}
		s := f[i+1]
		n := 2
		switch s {
		case '%':
			lit("%")
		case 't':
			lit("\t")
		case 'Y', 'C', 'y', 'm', 'd', 'e', 'j', 'H', 'I', 'M', 'S', 'p', 'a', 'A', 'b', 'h', 'B', 'z', 'Z', 's', 'u', 'w':
			tf.items = append(tf.items, timeItem{spec: s})
		case 'F', 'T', 'R', 'D': // shorthands for the specifiers they stand for
			for _, x := range map[byte]string{'F': "Y-m-d", 'T': "H:M:S", 'R': "H:M", 'D': "m/d/y"}[s] {
				if x >= 'A' {
					tf.items = append(tf.items, timeItem{spec: byte(x)})
				} else {
					lit(string(x))
				}
			}
		case 'f':
			tf.items = append(tf.items, timeItem{spec: 'f', digits: 9})
		case '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if i+2 >= len(f) || f[i+2] != 'f' {
				return nil, i, fmt.Errorf("unknown time specifier %q (a digit must be followed by f: %%3f)", f[i:min(i+3, len(f))])
			}
			tf.items = append(tf.items, timeItem{spec: 'f', digits: int(s - '0')})
			n = 3
		case 'E': // absl's %E#S: seconds with # fractional digits
			if i+3 >= len(f) || f[i+2] < '0' || f[i+2] > '9' || f[i+3] != 'S' {
				return nil, i, fmt.Errorf("unknown time specifier %q (supported: %%E0S to %%E9S)", f[i:min(i+4, len(f))])
			}
			tf.items = append(tf.items, timeItem{spec: 'S', digits: int(f[i+2] - '0')})
			n = 4
		default:
			return nil, i, fmt.Errorf("unknown time specifier %q (supported: %%Y %%C %%y %%m %%d %%e %%j %%H %%I %%M %%S %%p %%a %%A %%b %%h %%B %%z %%Z %%s %%u %%w %%F %%T %%R %%D %%f %%1f..%%9f %%E0S..%%E9S %%t %%%%)", f[i:i+2])
		}
		i += n
	}
	return tf, 0, nil
}

var (
	shortDays   = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	shortMonths = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

var pow10 = [...]int{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000}

// appendTime appends t (in UTC) in the format, through the per-second cache.
func (tf *timeFormat) appendTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	c := tf.cache.Load()
	if c == nil || c.unix != sec {
		if c != nil && sec < c.unix {
			// An older second (a long exchange ending): render it directly, keeping the
			// cache for the current second.
			return tf.render(b, t, nil)
		}
		c = &timeCache{unix: sec}
		c.text = tf.render(nil, t, &c.frac)
		tf.cache.Store(c)
	}
	start := len(b)
	b = append(b, c.text...)
	ns := t.Nanosecond()
	for _, p := range c.frac {
		putDigits(b[start+p.off:start+p.off+p.digits], ns/pow10[9-p.digits])
	}
	return b
}

// putDigits writes v into dst, zero-padded to its length.
func putDigits(dst []byte, v int) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

func appendPadded(b []byte, v, width int) []byte {
	var buf [20]byte
	putDigits(buf[:width], v)
	return append(b, buf[:width]...)
}

// render appends t in the format. With frac, the fractional digits are recorded there (and
// written as zeros) for the cache to patch.
func (tf *timeFormat) render(b []byte, t time.Time, frac *[]fracPos) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	ns := t.Nanosecond()
	fraction := func(b []byte, digits int) []byte {
		if frac != nil {
			*frac = append(*frac, fracPos{len(b), digits})
			return appendPadded(b, 0, digits)
		}
		return appendPadded(b, ns/pow10[9-digits], digits)
	}
	for _, it := range tf.items {
		switch it.spec {
		case 0:
			b = append(b, it.lit...)
		case 'Y':
			if year >= 0 && year < 10000 {
				b = appendPadded(b, year, 4)
			} else {
				b = strconv.AppendInt(b, int64(year), 10)
			}
		case 'C':
			b = appendPadded(b, year/100%100, 2)
		case 'y':
			b = appendPadded(b, (year%100+100)%100, 2)
		case 'm':
			b = appendPadded(b, int(month), 2)
		case 'd':
			b = appendPadded(b, day, 2)
		case 'e':
			if day < 10 {
				b = append(b, ' ')
			}
			b = strconv.AppendInt(b, int64(day), 10)
		case 'j':
			b = appendPadded(b, t.YearDay(), 3)
		case 'H':
			b = appendPadded(b, hour, 2)
		case 'I':
			b = appendPadded(b, (hour+11)%12+1, 2)
		case 'M':
			b = appendPadded(b, minute, 2)
		case 'S':
			b = appendPadded(b, second, 2)
			if it.digits > 0 {
				b = append(b, '.')
				b = fraction(b, it.digits)
			}
		case 'p':
			if hour < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'a':
			b = append(b, shortDays[t.Weekday()]...)
		case 'A':
			b = append(b, t.Weekday().String()...)
		case 'b', 'h':
			b = append(b, shortMonths[month-1]...)
		case 'B':
			b = append(b, month.String()...)
		case 'z':
			b = append(b, "+0000"...)
		case 'Z':
			b = append(b, "UTC"...)
		case 's':
			b = strconv.AppendInt(b, t.Unix(), 10)
		case 'u':
			b = strconv.AppendInt(b, int64((t.Weekday()+6)%7+1), 10)
		case 'w':
			b = strconv.AppendInt(b, int64(t.Weekday()), 10)
		case 'f':
			b = fraction(b, it.digits)
		}
	}
	return b
}
