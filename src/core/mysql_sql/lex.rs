//! The MariaDB/MySQL lexer the statement classifier needs: tokens with their byte spans, comments
//! and whitespace skipped, executable comments (`/*! … */`, `/*M! … */`) lexed as code. The
//! server's reading of a statement depends on its `sql_mode` (`NO_BACKSLASH_ESCAPES`,
//! `ANSI_QUOTES`) and version (versioned executable comments), which a hook cannot know: the
//! lexer takes them as a [`Mode`] and reports whether the text contained anything whose reading
//! depends on them, so the classifier can try every reading and refuse when they disagree.

/// One reading of the statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Mode {
    /// A backslash escapes the next byte in `'…'` strings (no `NO_BACKSLASH_ESCAPES`).
    pub sq_bs: bool,
    /// … in `"…"` strings (neither `NO_BACKSLASH_ESCAPES` nor `ANSI_QUOTES`).
    pub dq_bs: bool,
    /// Versioned (`/*!50700 …*/`) and MariaDB-only (`/*M! …*/`) executable comments run.
    pub exec: bool,
}

impl Mode {
    /// The server's default reading.
    pub const DEFAULT: Mode = Mode {
        sq_bs: true,
        dq_bs: true,
        exec: true,
    };

    /// Every reading a server can have: the `sql_mode` combinations that change lexing
    /// (default, `NO_BACKSLASH_ESCAPES` with or without `ANSI_QUOTES`, `ANSI_QUOTES` alone) times
    /// whether versioned executable comments run.
    pub const ALL: [Mode; 6] = [
        Mode::new(true, true, true),
        Mode::new(false, false, true),
        Mode::new(true, false, true),
        Mode::new(true, true, false),
        Mode::new(false, false, false),
        Mode::new(true, false, false),
    ];

    const fn new(sq_bs: bool, dq_bs: bool, exec: bool) -> Mode {
        Mode { sq_bs, dq_bs, exec }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A maximal run of identifier bytes: a keyword, an unquoted identifier or a number.
    Word,
    /// `` `…` ``
    Backtick,
    /// `'…'`
    SQuote,
    /// `"…"` (a string, or an identifier under `ANSI_QUOTES`)
    DQuote,
    Semi,
    Dot,
    /// A user or system variable (`@x`, `@@x`, `@'x'`).
    Var,
    /// Any other byte outside strings and comments.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tok {
    pub kind: Kind,
    /// Byte range in the statement, quotes included.
    pub start: usize,
    pub end: usize,
    /// Inside an executable comment.
    pub exec: bool,
}

#[derive(Debug, Default)]
pub(super) struct Lexed {
    pub toks: Vec<Tok>,
    /// A backslash occurred inside a `'…'` or `"…"` quote: the reading depends on `sql_mode`.
    pub saw_backslash: bool,
    /// A versioned or `/*M!` executable comment occurred: the reading depends on the server.
    pub saw_versioned: bool,
    /// A quote or comment was still open at the end.
    pub unterminated: bool,
}

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Bytes of an unquoted identifier, keyword or number: ASCII letters, digits, `_`, `$`, and any
/// byte ≥ 0x80 (UTF-8 identifiers).
pub(super) fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The end of a `#` or `-- ` comment: the byte after the next `\n` (the server ends these
/// comments at `\n` only), or the end.
fn line_end(s: &[u8], i: usize) -> usize {
    s[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(s.len(), |p| i + p + 1)
}

/// `--` starts a comment when followed by a control character, a space or the end (the server's
/// rule: `--x` is two minus signs).
fn dash_comment(s: &[u8], i: usize) -> bool {
    s.get(i + 1) == Some(&b'-') && s.get(i + 2).is_none_or(|&c| c <= b' ' || c == 0x7f)
}

/// The end of the quote opened at `i` (the byte after its closing quote) and whether it was closed.
fn quoted(s: &[u8], i: usize, mode: Mode, out: &mut Lexed) -> usize {
    let q = s[i];
    let bs = match q {
        b'\'' => mode.sq_bs,
        b'"' => mode.dq_bs,
        _ => false,
    };
    let mut j = i + 1;
    while j < s.len() {
        let b = s[j];
        if b == b'\\' && q != b'`' {
            out.saw_backslash = true;
            if bs {
                j += 2;
                continue;
            }
        }
        if b == q {
            if s.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    out.unterminated = true;
    s.len()
}

/// At `/*` (index `i`): skips a comment, or enters an executable one whose content is code in
/// this mode. Returns where lexing goes on.
fn comment(s: &[u8], i: usize, mode: Mode, in_exec: &mut bool, out: &mut Lexed) -> usize {
    let mut j = i + 2;
    let mariadb_only = s.get(j) == Some(&b'M') && s.get(j + 1) == Some(&b'!');
    if s.get(j) == Some(&b'!') || mariadb_only {
        j += if mariadb_only { 2 } else { 1 };
        let digits = s[j..].iter().take_while(|b| b.is_ascii_digit()).count();
        let versioned = digits > 0 || mariadb_only;
        out.saw_versioned |= versioned;
        if !versioned || mode.exec {
            *in_exec = true;
            return j + digits;
        }
    }
    match s[i + 2..].windows(2).position(|w| w == b"*/") {
        Some(p) => i + 2 + p + 2,
        None => {
            out.unterminated = true;
            s.len()
        }
    }
}

/// The statement's tokens in `mode`.
pub(super) fn lex(s: &[u8], mode: Mode) -> Lexed {
    let mut out = Lexed::default();
    let mut in_exec = false;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        let start = i;
        let kind = match b {
            _ if is_space(b) => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(s, i);
                continue;
            }
            b'-' if dash_comment(s, i) => {
                i = line_end(s, i);
                continue;
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                i = comment(s, i, mode, &mut in_exec, &mut out);
                continue;
            }
            b'*' if in_exec && s.get(i + 1) == Some(&b'/') => {
                in_exec = false;
                i += 2;
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i = quoted(s, i, mode, &mut out);
                match b {
                    b'\'' => Kind::SQuote,
                    b'"' => Kind::DQuote,
                    _ => Kind::Backtick,
                }
            }
            b'@' => {
                i += s[i..].iter().take_while(|&&c| c == b'@').count();
                match s.get(i) {
                    Some(b'\'' | b'"' | b'`') => i = quoted(s, i, mode, &mut out),
                    _ => i += s[i..].iter().take_while(|&&c| is_ident(c)).count(),
                }
                Kind::Var
            }
            b';' => {
                i += 1;
                Kind::Semi
            }
            b'.' => {
                i += 1;
                Kind::Dot
            }
            _ if is_ident(b) => {
                i += s[i..].iter().take_while(|&&c| is_ident(c)).count();
                Kind::Word
            }
            _ => {
                i += 1;
                Kind::Other
            }
        };
        out.toks.push(Tok {
            kind,
            start,
            end: i,
            exec: in_exec,
        });
    }
    out.unterminated |= in_exec;
    out
}

/// The value of a `'…'`/`"…"` string token (`tok` spans the quotes) as the server reads it in
/// `mode`: doubled quotes, and the backslash escapes unless the mode has none.
pub(super) fn string_value(s: &[u8], tok: &Tok, mode: Mode, out: &mut Vec<u8>) {
    let q = s[tok.start];
    let bs = if q == b'\'' { mode.sq_bs } else { mode.dq_bs };
    let end = if tok.end > tok.start + 1 && s[tok.end - 1] == q {
        tok.end - 1
    } else {
        tok.end
    };
    let body = &s[tok.start + 1..end];
    let mut j = 0;
    while j < body.len() {
        let b = body[j];
        if b == b'\\' && bs && j + 1 < body.len() {
            let e = body[j + 1];
            match e {
                b'0' => out.push(0),
                b'b' => out.push(8),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'Z' => out.push(0x1a),
                b'%' | b'_' => out.extend_from_slice(&[b'\\', e]),
                _ => out.push(e),
            }
            j += 2;
        } else if b == q && body.get(j + 1) == Some(&q) {
            out.push(q);
            j += 2;
        } else {
            out.push(b);
            j += 1;
        }
    }
}

/// The name in a `` `…` `` token (`` `` `` is one backtick).
pub(super) fn backtick_value(s: &[u8], tok: &Tok) -> Vec<u8> {
    let end = if tok.end > tok.start + 1 && s[tok.end - 1] == b'`' {
        tok.end - 1
    } else {
        tok.end
    };
    let mut out = Vec::with_capacity(end - tok.start);
    let body = &s[tok.start + 1..end];
    let mut j = 0;
    while j < body.len() {
        out.push(body[j]);
        j += if body[j] == b'`' { 2 } else { 1 };
    }
    out
}
