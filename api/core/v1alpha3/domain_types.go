package v1alpha3

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// DomainZone is a DNS zone the platform answers for with authority once the registrar
// names its nameservers: the SOA and NS at the apex, and every DomainRecord whose zone names
// this object. Its DNS name is spec.domainName, or the object's name when that is empty.
type DomainZone struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DomainZoneSpec   `json:"spec,omitempty"`
	Status DomainZoneStatus `json:"status,omitempty"`
}

// DomainZoneSpec is a zone's name, nameservers and zone transfers.
type DomainZoneSpec struct {
	// DomainName is the zone's DNS name (example.com). Empty: the object's name. Immutable.
	// +optional
	DomainName string `json:"domainName,omitempty"`

	// Nameservers are the NS names published at the apex, the ones to give the registrar.
	// Empty: the server's --dns-nameservers, else ns1.<zone> (which the zone then answers
	// with the DNS server's own address).
	// +optional
	// +listType=atomic
	Nameservers []string `json:"nameservers,omitempty"`

	// SOA tunes the zone's start-of-authority record.
	// +optional
	SOA *ZoneSOA `json:"soa,omitempty"`

	// Secondaries are the name servers that copy this zone: each is sent a NOTIFY on every
	// change and may transfer it (AXFR, IXFR), signed with TSIG when a key is given.
	// +optional
	// +listType=atomic
	Secondaries []ZoneSecondary `json:"secondaries,omitempty"`
}

// ZoneSOA holds the SOA fields a zone may set; the serial is the server's, moving on every
// change.
type ZoneSOA struct {
	// Email is the zone administrator's mailbox (hostmaster@example.com), published as the
	// SOA's RNAME. Default hostmaster@<zone>.
	// +optional
	Email string `json:"email,omitempty"`
	// Refresh, Retry and Expire are the secondaries' timers in seconds (default 3600, 600,
	// 1209600).
	// +optional
	Refresh *int32 `json:"refresh,omitempty"`
	// +optional
	Retry *int32 `json:"retry,omitempty"`
	// +optional
	Expire *int32 `json:"expire,omitempty"`
	// NegativeTTL is how long resolvers cache NXDOMAIN and NODATA answers, in seconds (the
	// SOA MINIMUM, RFC 2308; default 300; 0-86400).
	// +optional
	NegativeTTL *int32 `json:"negativeTTL,omitempty"`
}

// ZoneSecondary is a name server that copies the zone.
type ZoneSecondary struct {
	// Address is the secondary's IP, with an optional port for NOTIFY (default 53):
	// 192.0.2.53, [2001:db8::53]:5353. Transfers are allowed from this IP.
	Address string `json:"address"`
	// TSIGKeyRef names a Secret in namespace "default" (or the namespace given) holding the
	// TSIG key: "name" (the key's DNS name), "secret" (base64) and optionally "algorithm"
	// (hmac-sha256 by default; hmac-sha512, hmac-sha1). Transfers and NOTIFYs are then
	// signed, and an unsigned transfer request from the secondary is refused.
	// +optional
	TSIGKeyRef *SecretRef `json:"tsigKeyRef,omitempty"`
}

// SecretRef names a Secret.
type SecretRef struct {
	Name string `json:"name"`
	// Namespace defaults to "default".
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// DomainZonePhase sums up a zone.
type DomainZonePhase string

const (
	// DomainZonePhasePending: the zone is not served yet (no DNS server runs, or it has not
	// loaded the zone).
	DomainZonePhasePending DomainZonePhase = "Pending"
	// DomainZonePhaseActive: the DNS server answers for the zone.
	DomainZonePhaseActive DomainZonePhase = "Active"
	// DomainZonePhaseError: the zone cannot be served (its name overlaps another zone's, or
	// a setting is wrong); the condition Ready says why.
	DomainZonePhaseError DomainZonePhase = "Error"
)

// DomainZoneStatus is what the platform serves for a zone.
type DomainZoneStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is Pending, Active or Error.
	// +optional
	Phase DomainZonePhase `json:"phase,omitempty"`
	// DomainName is the zone's DNS name, fully qualified.
	// +optional
	DomainName string `json:"domainName,omitempty"`
	// Nameservers are the NS names the registrar must list for the zone to be delegated here.
	// +optional
	// +listType=atomic
	Nameservers []string `json:"nameservers,omitempty"`
	// Serial is the SOA serial served now; it moves on every change of the zone's data.
	// +optional
	Serial uint32 `json:"serial,omitempty"`
	// Records is how many DomainRecords the zone serves.
	// +optional
	Records int32 `json:"records,omitempty"`
	// Conditions: Ready (the zone is served, or why not).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// DomainZoneList is a list of DomainZones.
type DomainZoneList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DomainZone `json:"items"`
}

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// DomainRecord is one DNS name's records: raw data (target.dns), or a reference to what
// serves the name (target.ref: a Gateway), answered with its addresses as they change and
// given a certificate from ACME. It is served by the DNS server when spec.zone names a
// DomainZone; without a zone the name lives in someone else's DNS and only its certificate is
// managed here.
type DomainRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DomainRecordSpec   `json:"spec,omitempty"`
	Status DomainRecordStatus `json:"status,omitempty"`
}

// DomainRecordSpec is a record's name, zone, TTL, data and certificate.
type DomainRecordSpec struct {
	// Name is the record's fully qualified name (api.example.com; *.apps.example.com for a
	// wildcard; the zone's own name for the apex). Immutable.
	Name string `json:"name"`
	// Zone names the DomainZone object the record belongs to (its object name, which need
	// not be its DNS name). Empty: a name in DNS hosted elsewhere. Immutable.
	// +optional
	Zone string `json:"zone,omitempty"`
	// TTL is the records' time to live in seconds (0-86400, default 300).
	// +optional
	TTL *int32 `json:"ttl,omitempty"`
	// Target is the record's data: exactly one of ref and dns. Which one cannot change.
	Target DomainRecordTarget `json:"target"`
	// TLS is the certificate of a record whose target is a ref; on by default for a ref.
	// +optional
	TLS *DomainRecordTLS `json:"tls,omitempty"`
}

// DomainRecordTarget is what a name answers with.
type DomainRecordTarget struct {
	// Ref points the name at an object that serves it: a Gateway
	// (group gateway.apoxy.dev), whose addresses the name answers with.
	// +optional
	Ref *DomainTargetRef `json:"ref,omitempty"`
	// DNS is raw record data: exactly one type.
	// +optional
	DNS *DomainTargetDNS `json:"dns,omitempty"`
}

// DomainTargetRef names the object a record points at.
type DomainTargetRef struct {
	// Group is gateway.apoxy.dev.
	Group string `json:"group"`
	// Kind is Gateway.
	Kind string `json:"kind"`
	// Name is the object's name.
	Name string `json:"name"`
	// Namespace of the Gateway (default "default").
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// DomainTargetDNS is raw DNS data for a name: exactly one field is set. The helpers dkim,
// spf and dmarc write TXT records at the names those standards use.
type DomainTargetDNS struct {
	// A is IPv4 addresses.
	// +optional
	// +listType=atomic
	A []string `json:"a,omitempty"`
	// AAAA is IPv6 addresses.
	// +optional
	// +listType=atomic
	AAAA []string `json:"aaaa,omitempty"`
	// FQDN makes the name a CNAME (an alias) of this name. Not at a zone's apex.
	// +optional
	FQDN *string `json:"fqdn,omitempty"`
	// TXT is text records, each up to 4000 bytes (sent as 255-byte strings).
	// +optional
	// +listType=atomic
	TXT []string `json:"txt,omitempty"`
	// MX is mail exchangers.
	// +optional
	// +listType=atomic
	MX []MXRecord `json:"mx,omitempty"`
	// SRV is service locations (the name is _service._proto.name).
	// +optional
	// +listType=atomic
	SRV []SRVRecord `json:"srv,omitempty"`
	// CAA says which certificate authorities may issue for the name.
	// +optional
	// +listType=atomic
	CAA []CAARecord `json:"caa,omitempty"`
	// NS delegates the name to other name servers (a subzone). Glue for names inside the zone
	// is added from the zone's own A and AAAA records.
	// +optional
	// +listType=atomic
	NS []string `json:"ns,omitempty"`
	// DS is delegation signer records of a signed subzone, published as given.
	// +optional
	// +listType=atomic
	DS []DSRecord `json:"ds,omitempty"`
	// DNSKEY is public keys, published as given (the server does not sign).
	// +optional
	// +listType=atomic
	DNSKEY []DNSKEYRecord `json:"dnskey,omitempty"`
	// DKIM publishes DomainKeys (TXT "v=DKIM1; k=…; p=…" at <selector>._domainkey.<name>).
	// +optional
	// +listType=atomic
	DKIM []DKIMRecord `json:"dkim,omitempty"`
	// SPF publishes the name's sender policy (TXT "v=spf1 …" at the name). One per name.
	// +optional
	SPF *SPFRecord `json:"spf,omitempty"`
	// DMARC publishes the name's DMARC policy (TXT "v=DMARC1; …" at _dmarc.<name>).
	// +optional
	DMARC *DMARCRecord `json:"dmarc,omitempty"`
}

// MXRecord is a mail exchanger.
type MXRecord struct {
	// Preference: lower is tried first (0-65535).
	Preference int32 `json:"preference"`
	// Exchange is the mail server's name.
	Exchange string `json:"exchange"`
}

// SRVRecord is a service location (RFC 2782).
type SRVRecord struct {
	Priority int32 `json:"priority"`
	Weight   int32 `json:"weight"`
	Port     int32 `json:"port"`
	// Target is the host's name ("." for no service).
	Target string `json:"target"`
}

// CAARecord restricts issuance (RFC 8659).
type CAARecord struct {
	// Flags: 0, or 128 for critical.
	// +optional
	Flags int32 `json:"flags,omitempty"`
	// Tag is issue, issuewild, iodef or issuemail.
	Tag string `json:"tag"`
	// Value is the tag's value (letsencrypt.org; mailto:security@example.com).
	Value string `json:"value"`
}

// DSRecord is a delegation signer (RFC 4034).
type DSRecord struct {
	KeyTag     int32 `json:"keyTag"`
	Algorithm  int32 `json:"algorithm"`
	DigestType int32 `json:"digestType"`
	// Digest in hex.
	Digest string `json:"digest"`
}

// DNSKEYRecord is a zone key (RFC 4034).
type DNSKEYRecord struct {
	// Flags: 256 (zone key) or 257 (key signing key).
	Flags int32 `json:"flags"`
	// Protocol is always 3.
	// +optional
	Protocol  int32 `json:"protocol,omitempty"`
	Algorithm int32 `json:"algorithm"`
	// PublicKey in base64.
	PublicKey string `json:"publicKey"`
}

// DKIMRecord is one DKIM selector's public key.
type DKIMRecord struct {
	// Selector is the s= of the signatures (the label before _domainkey).
	Selector string `json:"selector"`
	// KeyType is rsa (default) or ed25519.
	// +optional
	KeyType string `json:"keyType,omitempty"`
	// PublicKey is the key in base64, without PEM armour.
	PublicKey string `json:"publicKey"`
}

// SPFRecord is a sender policy (RFC 7208), written as "v=spf1 a mx ip4:… include:… ~all".
type SPFRecord struct {
	// A and MX allow the name's own A/AAAA and MX hosts.
	// +optional
	A bool `json:"a,omitempty"`
	// +optional
	MX bool `json:"mx,omitempty"`
	// IP4 and IP6 are allowed addresses or CIDR ranges.
	// +optional
	// +listType=atomic
	IP4 []string `json:"ip4,omitempty"`
	// +optional
	// +listType=atomic
	IP6 []string `json:"ip6,omitempty"`
	// Include names other domains whose policy allows too (_spf.google.com).
	// +optional
	// +listType=atomic
	Include []string `json:"include,omitempty"`
	// All is what happens to other senders: fail (-all), softfail (~all, the default),
	// neutral (?all) or pass (+all).
	// +optional
	All string `json:"all,omitempty"`
}

// DMARCRecord is a DMARC policy (RFC 7489).
type DMARCRecord struct {
	// Policy is none, quarantine or reject.
	Policy string `json:"policy"`
	// SubdomainPolicy (sp=) is none, quarantine or reject; empty: as policy.
	// +optional
	SubdomainPolicy string `json:"subdomainPolicy,omitempty"`
	// Percent (pct=) of failing mail the policy applies to, 0-100 (default 100).
	// +optional
	Percent *int32 `json:"percent,omitempty"`
	// AggregateReports (rua=) and ForensicReports (ruf=) are mailto: URIs.
	// +optional
	// +listType=atomic
	AggregateReports []string `json:"aggregateReports,omitempty"`
	// +optional
	// +listType=atomic
	ForensicReports []string `json:"forensicReports,omitempty"`
	// DKIMAlignment (adkim=) and SPFAlignment (aspf=) are relaxed (default) or strict.
	// +optional
	DKIMAlignment string `json:"dkimAlignment,omitempty"`
	// +optional
	SPFAlignment string `json:"spfAlignment,omitempty"`
}

// DomainRecordTLS is a ref record's certificate.
type DomainRecordTLS struct {
	// Disabled turns the certificate off.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// CertificateAuthority is letsencrypt (default, or the server's --acme-ca),
	// letsencrypt-staging, or an ACME directory URL.
	// +optional
	CertificateAuthority string `json:"certificateAuthority,omitempty"`
	// Challenge is HTTP01 (the CA fetches a token through the Gateway on port 80) or DNS01
	// (a TXT record in the zone; needs spec.zone, and is the only one for a wildcard). Empty:
	// DNS01 when the record is in a zone served here, else HTTP01.
	// +optional
	Challenge string `json:"challenge,omitempty"`
}

// DomainRecordPhase sums up a record.
type DomainRecordPhase string

const (
	// DomainRecordPhasePending: not served yet (its zone or target is missing or not ready).
	DomainRecordPhasePending DomainRecordPhase = "Pending"
	// DomainRecordPhaseIssuing: served; its certificate is being obtained.
	DomainRecordPhaseIssuing DomainRecordPhase = "Issuing"
	// DomainRecordPhaseActive: served, with its certificate when it has one.
	DomainRecordPhaseActive DomainRecordPhase = "Active"
	// DomainRecordPhaseDetached: its target is gone (a deleted Gateway); the name answers
	// nothing until it comes back.
	DomainRecordPhaseDetached DomainRecordPhase = "Detached"
)

// DomainRecordStatus is what the platform serves for a record.
type DomainRecordStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Type is the record type served: A, AAAA, CNAME, TXT, MX, SRV, CAA, NS, DS, DNSKEY (a
	// ref target: A and/or AAAA).
	// +optional
	Type string `json:"type,omitempty"`
	// Phase is Pending, Issuing, Active or Detached.
	// +optional
	Phase DomainRecordPhase `json:"phase,omitempty"`
	// ResolvedValues are the record data served now, in zone-file form.
	// +optional
	// +listType=atomic
	ResolvedValues []string `json:"resolvedValues,omitempty"`
	// Certificate is the name's certificate, once issued.
	// +optional
	Certificate *CertificateStatus `json:"certificate,omitempty"`
	// Conditions: Ready, ZoneReady, TargetReady, TLSReady.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CertificateStatus describes an issued certificate.
type CertificateStatus struct {
	// Names are the certificate's DNS names.
	// +listType=atomic
	Names []string `json:"names"`
	// Issuer is the issuing CA's name; CA its ACME directory.
	Issuer string `json:"issuer,omitempty"`
	// +optional
	CA string `json:"ca,omitempty"`
	// Serial in hex.
	Serial   string      `json:"serial,omitempty"`
	NotAfter metav1.Time `json:"notAfter"`
	// RenewAfter is when renewal starts (from the CA's renewal info when it gives one).
	// +optional
	RenewAfter *metav1.Time `json:"renewAfter,omitempty"`
	// LastError is the CA's own error of the last failed attempt, kept until one succeeds.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// DomainRecordList is a list of DomainRecords.
type DomainRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DomainRecord `json:"items"`
}
