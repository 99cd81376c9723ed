//! libpq's keywords: which are known, which are secrets, which strings are connection strings.

/// libpq's keywords (all versions 15–18), used only to decide whether a keyword may be quoted in
/// an error message (an unknown "keyword" may be a piece of a mis-parsed password).
pub(super) const KNOWN_KEYWORDS: &[&str] = &[
    "service",
    "servicefile",
    "user",
    "password",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "dbname",
    "host",
    "hostaddr",
    "port",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslkeylogfile",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "require_auth",
    "min_protocol_version",
    "max_protocol_version",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "target_session_attrs",
    "load_balance_hosts",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "requiressl",
];

/// Keywords whose values are secrets (redacted in logs).
pub(super) const SECRET_KEYWORDS: &[&[u8]] = &[b"password", b"sslpassword", b"oauth_client_secret"];

pub(super) fn is_secret(key: &[u8]) -> bool {
    SECRET_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

pub(super) fn describe_keyword(k: &[u8], pos: usize) -> String {
    match std::str::from_utf8(k) {
        Ok(k) if KNOWN_KEYWORDS.contains(&k) => format!("\"{k}\""),
        _ => format!("the keyword at byte {pos}"),
    }
}

pub(super) const URI_PREFIXES: [&[u8]; 2] = [b"postgresql://", b"postgres://"];

/// libpq's `uri_prefix_length`: 13 for `postgresql://`, 11 for `postgres://`, else 0.
pub(super) fn uri_prefix_length(s: &[u8]) -> usize {
    URI_PREFIXES
        .iter()
        .find(|p| s.starts_with(p))
        .map_or(0, |p| p.len())
}

/// libpq's `recognized_connection_string`: a URI prefix or any `=`. Such a `dbname` is expanded
/// by `PQconnectdbParams(…, expand_dbname=1)` and `PQsetdbLogin`.
pub fn recognized_connection_string(s: &[u8]) -> bool {
    uri_prefix_length(s) != 0 || s.contains(&b'=')
}
