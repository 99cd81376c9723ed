//! The quick filters in front of the classifier (issue 12): every statement a hooked client
//! sends goes through [`not_use`], which must turn a statement that cannot change the database
//! away in a few dozen instructions, however many `users`/`updates`/`payments` words it has.
//!
//! * [`safe_single_statement`]: the statement's first keyword (after whitespace and ordinary
//!   comments) is `SELECT`, `INSERT`, `UPDATE`, `DELETE` or `REPLACE`, and nothing after its
//!   first `;` (if any) has a `USE`, `EXECUTE`, `PREPARE` or `CALL` word. Such a statement cannot
//!   change the database on the server: the first keyword fixes what the first statement is (none
//!   of these can contain a `USE`, `EXECUTE IMMEDIATE`, `PREPARE` or `CALL`: a stored function or
//!   trigger they call may run neither `USE` nor dynamic SQL), and every later statement lies
//!   after the first `;` byte in every reading (strings, comments and `sql_mode` only decide
//!   which `;` ends it).
//!   Words of the first statement are not looked at, so `SELECT use FROM t` (a syntax error on
//!   the server) passes here while [`super::classify_full`] refuses it.
//! * [`may_change_db`]: `false` when the statement has no `USE`, `EXECUTE`, `PREPARE` or `CALL`
//!   word at all (a few instructions per 16 bytes); it never changes the classification (a
//!   `CALL` is `NotUse` for the classifier: the hook reads the procedure's body, see
//!   `hooks_mysql_call`).

use super::lex;

/// The statement kinds [`safe_single_statement`] accepts, lower case.
const SAFE_FIRST: [&[u8]; 5] = [b"select", b"insert", b"update", b"delete", b"replace"];

/// Whether the statement cannot change the database: [`safe_single_statement`], or no
/// `USE`/`EXECUTE`/`PREPARE`/`CALL` word at all.
pub fn not_use(s: &[u8]) -> bool {
    not_use_by(s, |from| memchr::memchr(b';', &s[from..]).map(|p| from + p))
}

/// [`not_use`] with `semi_from(i)`, the index of the first `;` of `s` at or after `i`, supplied
/// by the caller (the hooks know it already, or use the C library's `memchr`, the cheapest scan
/// for statements of a few dozen bytes). The common case, a statement that starts with its
/// keyword, is decided inline in a few instructions.
#[inline(always)]
pub fn not_use_by(s: &[u8], semi_from: impl Fn(usize) -> Option<usize>) -> bool {
    match s.get(..8).and_then(|w| keyword_end(w.try_into().ok()?)) {
        // `p + 1 == s.len()`: one trailing `;`.
        Some(end) => semi_from(end).is_none_or(|p| p + 1 == s.len() || no_keyword_from(s, p)),
        None => not_use_slow(s, semi_from),
    }
}

/// [`not_use_by`] for a statement that does not start with one of [`SAFE_FIRST`] right away.
#[inline(never)]
fn not_use_slow(s: &[u8], semi_from: impl Fn(usize) -> Option<usize>) -> bool {
    safe_single_statement_by(s, semi_from) || !may_change_db(s)
}

/// Whether `s[p..]` has no `USE`/`EXECUTE`/`PREPARE`/`CALL` word.
#[inline(never)]
fn no_keyword_from(s: &[u8], p: usize) -> bool {
    !may_change_db(&s[p..])
}

/// Where the first token starts after whitespace, `#`/`-- ` comments and non-executable
/// `/* */` comments; `None` at an executable comment (`/*!`, `/*M!`), an unterminated comment or
/// the end.
fn first_token(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        match *s.get(i)? {
            b if lex::is_space(b) => i += 1,
            b'#' => i += memchr::memchr(b'\n', &s[i..])? + 1,
            b'-' if s.get(i + 1) == Some(&b'-')
                && s.get(i + 2).is_some_and(|&c| c <= b' ' || c == 0x7f) =>
            {
                i += memchr::memchr(b'\n', &s[i..])? + 1
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                if matches!(s.get(i + 2), Some(b'!' | b'M')) {
                    return None;
                }
                i += 2 + memchr::memmem::find(&s[i + 2..], b"*/")? + 2;
            }
            _ => return Some(i),
        }
    }
}

/// [`lex::is_ident`] as a table: one load on the fast path.
static IDENT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
        b += 1;
    }
    t
};

/// Where the word at `i` ends when it is one of [`SAFE_FIRST`] (any case).
fn safe_keyword_at(s: &[u8], i: usize) -> Option<usize> {
    match s.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        Some(w) => keyword_end(w).map(|n| i + n),
        None => slow_keyword_at(s, i),
    }
}

/// [`SAFE_FIRST`] by their first letter's low 5 bits (distinct: s, i, u, d, r): the word as a
/// little-endian integer, the mask of its bytes and its length; `(u64::MAX, 0, 0)` (never
/// matches) for the other letters.
static BY_LETTER: [(u64, u64, u32); 32] = {
    let mut t = [(u64::MAX, 0, 0); 32];
    let mut k = 0;
    while k < SAFE_FIRST.len() {
        let w = SAFE_FIRST[k];
        t[(w[0] & 31) as usize] = (word(w), u64::MAX >> (64 - 8 * w.len()), w.len() as u32);
        k += 1;
    }
    t
};

/// The length of the word [`SAFE_FIRST`] (any case) that starts the 8 bytes `w`, if one does.
#[inline(always)]
fn keyword_end(w: [u8; 8]) -> Option<usize> {
    let raw = u64::from_le_bytes(w);
    // `| 0x20` maps each upper-case letter to its lower case and no other byte to a letter.
    let low = raw | 0x2020_2020_2020_2020;
    let (kw, mask, len) = BY_LETTER[(low & 31) as usize];
    let next = (raw >> (8 * len)) as u8; // the byte after the word (len ≤ 7)
    (low & mask == kw && !IDENT[usize::from(next)]).then_some(len as usize)
}

/// [`safe_keyword_at`] for a statement that ends within 8 bytes of `i`.
#[cold]
fn slow_keyword_at(s: &[u8], i: usize) -> Option<usize> {
    SAFE_FIRST.iter().find_map(|k| {
        let end = i + k.len();
        (s.get(i..end)?.eq_ignore_ascii_case(k) && s.get(end).is_none_or(|&b| !lex::is_ident(b)))
            .then_some(end)
    })
}

/// `w` (at most 8 bytes) as a little-endian integer.
const fn word(w: &[u8]) -> u64 {
    let mut v = 0u64;
    let mut k = w.len();
    while k > 0 {
        k -= 1;
        v = (v << 8) | w[k] as u64;
    }
    v
}

/// The first-keyword filter (see the module documentation).
pub fn safe_single_statement(s: &[u8]) -> bool {
    safe_single_statement_by(s, |from| memchr::memchr(b';', &s[from..]).map(|p| from + p))
}

/// Where the first keyword ends when it is one of [`SAFE_FIRST`].
pub fn first_keyword_end(s: &[u8]) -> Option<usize> {
    first_token(s).and_then(|i| safe_keyword_at(s, i))
}

/// [`safe_single_statement`] with the caller's `;` scan (as in [`not_use_by`]).
fn safe_single_statement_by(s: &[u8], semi_from: impl Fn(usize) -> Option<usize>) -> bool {
    first_keyword_end(s).is_some_and(|end| semi_from(end).is_none_or(|p| no_keyword_from(s, p)))
}

/// Whether byte `b` can precede a keyword token: anything but a letter, `_`, `$` or a byte
/// ≥ 0x80 (a digit can: `/*!50700USE`).
fn starts_word(s: &[u8], i: usize) -> bool {
    i == 0 || !lex::is_ident(s[i - 1]) || s[i - 1].is_ascii_digit()
}

/// Whether `word` (lower case) is at `i` as a whole token.
fn word_at(s: &[u8], i: usize, word: &[u8]) -> bool {
    s.get(i..i + word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
        && starts_word(s, i)
        && s.get(i + word.len()).is_none_or(|&b| !lex::is_ident(b))
}

/// Whether `s` has a `CALL` word (anywhere: strings and comments included).
pub fn has_call_word(s: &[u8]) -> bool {
    memchr::memchr2_iter(b'c', b'C', s).any(|i| word_at(s, i, b"call"))
}

/// A `u`/`p`/`c` byte at `i`: the start of `use`/`prepare`/`call`, or the `u` of `execute`.
fn keyword_around(s: &[u8], i: usize) -> bool {
    let low = |k: usize| s.get(k).map_or(0, |b| b | 0x20);
    match s[i] | 0x20 {
        b'p' => low(i + 1) == b'r' && word_at(s, i, b"prepare"),
        b'c' => low(i + 1) == b'a' && word_at(s, i, b"call"),
        _ => {
            (low(i + 1) == b's' && word_at(s, i, b"use"))
                || (i >= 4 && low(i - 1) == b'c' && word_at(s, i - 4, b"execute"))
        }
    }
}

#[inline(always)]
fn is_up(b: u8) -> bool {
    let l = b | 0x20;
    l == b'u' || l == b'p' || l == b'c'
}

/// Whether a 16-byte block has a `u`/`p` byte (any case): compiles to a few SSE2 instructions.
#[inline(always)]
fn block_has_up(c: &[u8; 16]) -> bool {
    let mut any = 0u8;
    for &b in c {
        any |= u8::from(is_up(b));
    }
    any != 0
}

/// The high bit of every byte of `v` that is zero (exact, no false positives).
fn zero_bytes(v: u64) -> u64 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LO7) + LO7) | v | LO7)
}

/// The high bit of every `u`/`p`/`c` byte (any case) of the 8 bytes in `w`.
fn up_bytes(w: u64) -> u64 {
    let x = w | 0x2020_2020_2020_2020;
    zero_bytes(x ^ 0x7575_7575_7575_7575)
        | zero_bytes(x ^ 0x7070_7070_7070_7070)
        | zero_bytes(x ^ 0x6363_6363_6363_6363)
}

/// The quick filter: `false` when `stmt` has no `USE`, `EXECUTE`, `PREPARE` or `CALL` word — then
/// no reading of it can change the database (keywords cannot be split by comments or escapes).
#[inline(always)]
pub fn may_change_db(s: &[u8]) -> bool {
    let n = s.len();
    if n < 16 {
        let mut buf = [0u8; 16];
        buf[..n].copy_from_slice(s);
        return block_has_up(&buf) && hits(s, 0, &buf);
    }
    let mut at = 0;
    loop {
        let block: &[u8; 16] = s[at..at + 16].try_into().unwrap_or(&[0; 16]);
        if block_has_up(block) && hits(s, at, block) {
            return true;
        }
        if at + 16 >= n {
            return false;
        }
        // The last block overlaps the one before instead of a byte-by-byte tail.
        at = (at + 16).min(n - 16);
    }
}

/// Whether a `u`/`p` byte of `block` (the bytes of `s` from `at`, zero-padded past its end)
/// starts or is part of a keyword that matters.
#[cold]
#[inline(never)]
fn hits(s: &[u8], at: usize, block: &[u8; 16]) -> bool {
    for half in 0..2 {
        let bytes: [u8; 8] = block[half * 8..half * 8 + 8].try_into().unwrap_or([0; 8]);
        let mut m = up_bytes(u64::from_le_bytes(bytes));
        while m != 0 {
            let j = at + half * 8 + (m.trailing_zeros() / 8) as usize;
            m &= m - 1;
            if j < s.len() && keyword_around(s, j) {
                return true;
            }
        }
    }
    false
}
