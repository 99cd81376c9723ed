//! Name templates (`{db}_jw{worker:02}`) and the shell-style globs of the allow/deny lists.

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Piece {
    Lit(String),
    Db,
    /// `{worker}` (width 0) or `{worker:0N}` (zero-padded to N).
    Worker(usize),
    WorkerCount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Template {
    pieces: Vec<Piece>,
}

#[cfg(test)]
pub(super) const DEFAULT_TEMPLATE: &str = "{db}_jw{worker:02}";
/// Widths beyond this cannot fit any engine's identifier limit anyway.
pub(super) const MAX_WIDTH: usize = 64;

impl Template {
    pub(super) fn default_template() -> Template {
        Template {
            pieces: vec![Piece::Db, Piece::Lit("_jw".to_owned()), Piece::Worker(2)],
        }
    }

    pub(super) fn parse(s: &str) -> Result<Template, String> {
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() || matches!(c, '\'' | '"' | '`' | '\\'))
        {
            return Err(format!(
                "template must not contain quotes, backslashes or control characters (found {c:?})"
            ));
        }
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return Err("template has a \"{\" without a closing \"}\"".to_owned());
                    };
                    let inner = &rest[..end];
                    rest = &rest[end + 1..];
                    let piece = match inner {
                        "db" => Piece::Db,
                        "worker" => Piece::Worker(0),
                        "worker_count" => Piece::WorkerCount,
                        _ => match inner.strip_prefix("worker:0").and_then(parse_decimal) {
                            Some(w) if (w as usize) <= MAX_WIDTH => Piece::Worker(w as usize),
                            _ => {
                                return Err(format!(
                                    "unknown placeholder {{{inner}}} in template (use {{db}}, {{worker}}, {{worker:0N}}, {{worker_count}})"
                                ))
                            }
                        },
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece);
                }
                '}' => return Err("template has a \"}\" without an opening \"{\"".to_owned()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        match pieces.iter().filter(|p| **p == Piece::Db).count() {
            0 => return Err("template must contain {db}".to_owned()),
            1 => {}
            _ => return Err("template must contain {db} exactly once".to_owned()),
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Worker(_))) {
            return Err(
                "template must contain {worker} or {worker:0N}: without it every worker would use the same database"
                    .to_owned(),
            );
        }
        Ok(Template { pieces })
    }

    pub(super) fn render_piece(out: &mut String, p: &Piece, db: &str, w: &Worker) {
        match p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Db => out.push_str(db),
            Piece::Worker(width) => push_padded(out, w.num, *width),
            Piece::WorkerCount => push_padded(out, w.count, 0),
        }
    }

    /// The rendered text before and after `{db}` for this worker.
    pub(super) fn parts(&self, w: &Worker) -> (String, String) {
        let mut before = String::new();
        let mut after = String::new();
        let mut seen_db = false;
        for p in &self.pieces {
            if *p == Piece::Db {
                seen_db = true;
            } else if seen_db {
                Self::render_piece(&mut after, p, "", w);
            } else {
                Self::render_piece(&mut before, p, "", w);
            }
        }
        (before, after)
    }

    pub(super) fn render(&self, db: &str, w: &Worker) -> String {
        let mut out = String::with_capacity(db.len() + 8);
        for p in &self.pieces {
            Self::render_piece(&mut out, p, db, w);
        }
        out
    }
}

/// `n` in decimal, zero-padded to `width`, without the formatting machinery (it ran at every
/// connect and cost more than the rest of the decision).
pub(super) fn push_padded(out: &mut String, n: u32, width: usize) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in (digits.len() - i)..width {
        out.push('0');
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// A shell-style glob with `*` (any run) and `?` (any one character).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Glob {
    pat: Vec<char>,
}

impl Glob {
    pub(super) fn new(p: &str) -> Glob {
        Glob {
            pat: p.chars().collect(),
        }
    }

    pub(super) fn matches(&self, name: &[char]) -> bool {
        let pat = &self.pat;
        let (mut p, mut n) = (0usize, 0usize);
        // Position of the last `*` seen and the name position it currently swallows up to.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match pat.get(p) {
                Some('*') => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(c) if *c == '?' || Some(c) == name.get(n) => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        p = sp + 1;
                        n = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        pat.get(p..)
            .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
    }
}
