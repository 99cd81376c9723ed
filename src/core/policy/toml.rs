//! The TOML policy file (`DAGZ_POLICY`): parsing with key positions, so errors name the line.

use super::*;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// serde_spanned's protocol (what `toml::Spanned` asks the deserializer for). toml leaves the span
/// out for some keys (the last part of a dotted key), so keys are read with an optional span.
pub(super) const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
pub(super) const SPANNED_START: &str = "$__serde_spanned_private_start";
pub(super) const SPANNED_END: &str = "$__serde_spanned_private_end";
pub(super) const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
pub(super) static SPANNED_FIELDS: [&str; 3] = [SPANNED_START, SPANNED_END, SPANNED_VALUE];
pub(super) const TOML_DATETIME: &str = "$__toml_private_datetime";

/// A table key and, when toml knows it, its byte span.
pub(super) struct SKey {
    name: String,
    span: Option<std::ops::Range<usize>>,
}

impl<'de> Deserialize<'de> for SKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SKey, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SKey, E> {
                Ok(SKey {
                    name: v.to_owned(),
                    span: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SKey, A::Error> {
                let (mut start, mut end, mut name) = (None, None, None);
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        SPANNED_START => start = Some(m.next_value::<usize>()?),
                        SPANNED_END => end = Some(m.next_value::<usize>()?),
                        SPANNED_VALUE => name = Some(m.next_value::<String>()?),
                        _ => {
                            m.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field(SPANNED_VALUE))?;
                Ok(SKey {
                    name,
                    span: start.zip(end).map(|(s, e)| s..e),
                })
            }
        }
        d.deserialize_struct(SPANNED_NAME, &SPANNED_FIELDS, V)
    }
}

/// A TOML value whose table keys carry their spans, so that errors can name a line.
pub(super) enum Node {
    Table(Vec<(SKey, Node)>),
    Array(Vec<Node>),
    Str(String),
    Bool(bool),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Other("an integer"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Other("an integer"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Other("a float"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<SKey>()? {
                    if k.name == TOML_DATETIME {
                        // toml hands a datetime over as a one-entry map.
                        map.next_value::<de::IgnoredAny>()?;
                        return Ok(Node::Other("a datetime"));
                    }
                    let v = map.next_value::<Node>()?;
                    entries.push((k, v));
                }
                Ok(Node::Table(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl Node {
    fn type_name(&self) -> &'static str {
        match self {
            Node::Table(_) => "a table",
            Node::Array(_) => "an array",
            Node::Str(_) => "a string",
            Node::Bool(_) => "a boolean",
            Node::Other(t) => t,
        }
    }
}

/// Where a key is: its span, or (toml has none for the last part of a dotted key) its first
/// occurrence after the enclosing key.
pub(super) fn key_pos(text: &str, key: &SKey, parent: usize) -> usize {
    match &key.span {
        Some(r) => r.start,
        None => text
            .get(parent..)
            .and_then(|t| t.find(key.name.as_str()))
            .map_or(parent, |i| parent + i),
    }
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
        + 1
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Policy {
    /// Parse the TOML policy file `text` (read from `path`, used in messages). Errors are one line
    /// naming the file, the line and the key.
    pub fn from_toml(text: &str, path: &str) -> Result<Policy, String> {
        let err =
            |at: usize, msg: String| format!("policy {path} line {}: {msg}", line_of(text, at));
        let root = ::toml::from_str::<Node>(text).map_err(|e| match e.span() {
            Some(span) => err(span.start, one_line(e.message())),
            None => format!("policy {path}: {}", one_line(e.message())),
        })?;
        let Node::Table(entries) = root else {
            return Err(format!("policy {path}: not a TOML table"));
        };
        let mut policy = Policy::default();
        for (key, value) in &entries {
            let at = key_pos(text, key, 0);
            let name = key.name.as_str();
            match name {
                "disable" => match value {
                    Node::Bool(b) => policy.disable_all = *b,
                    v => {
                        return Err(err(
                            at,
                            format!(
                                "key \"disable\" must be true or false, not {}",
                                v.type_name()
                            ),
                        ))
                    }
                },
                "postgres" | "mysql" => {
                    let Node::Table(items) = value else {
                        return Err(err(
                            at,
                            format!(
                                "key {name:?} must be a table ([{name}]), not {}",
                                value.type_name()
                            ),
                        ));
                    };
                    let engine = if name == "postgres" {
                        Engine::Postgres
                    } else {
                        Engine::Mysql
                    };
                    let ep = Self::engine_from_toml(engine, items, text, at)
                        .map_err(|(at, m)| err(at, m))?;
                    match engine {
                        Engine::Postgres => policy.pg = ep,
                        Engine::Mysql => policy.mysql = ep,
                    }
                }
                other => {
                    return Err(err(
                        at,
                        format!(
                            "unknown key {other:?} (expected \"disable\", [postgres] or [mysql])"
                        ),
                    ))
                }
            }
        }
        Ok(policy)
    }

    fn engine_from_toml(
        engine: Engine,
        items: &[(SKey, Node)],
        text: &str,
        parent: usize,
    ) -> Result<EnginePolicy, (usize, String)> {
        let table = engine.table_name();
        let mut ep = EnginePolicy::default();
        for (key, value) in items {
            let at = key_pos(text, key, parent);
            let name = key.name.as_str();
            match name {
                "enabled" => match value {
                    Node::Bool(b) => ep.enabled = *b,
                    v => {
                        return Err((
                            at,
                            format!("key \"enabled\" must be true or false, not {}", v.type_name()),
                        ))
                    }
                },
                "template" => match value {
                    Node::Str(s) => {
                        ep.template = Template::parse(s).map_err(|m| (at, format!("key \"template\": {m}")))?
                    }
                    v => return Err((at, format!("key \"template\" must be a string, not {}", v.type_name()))),
                },
                "reroute" | "skip" => {
                    let globs = match value {
                        Node::Array(xs) => xs
                            .iter()
                            .map(|x| match x {
                                Node::Str(s) => Some(Glob::new(s)),
                                _ => None,
                            })
                            .collect::<Option<Vec<_>>>(),
                        _ => None,
                    }
                    .ok_or_else(|| (at, format!("key {name:?} must be a list of strings")))?;
                    if name == "reroute" {
                        ep.reroute = Some(globs);
                    } else {
                        ep.skip = globs;
                    }
                }
                other => {
                    return Err((
                        at,
                        format!("unknown key {other:?} in [{table}] (expected enabled, template, reroute, skip)"),
                    ))
                }
            }
        }
        Ok(ep)
    }
}
