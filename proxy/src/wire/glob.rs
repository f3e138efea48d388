//! Redis's glob matcher (util.c stringmatchlen) for KEYS, SCAN MATCH and CONFIG GET.
//!
//! This is stringmatchlen byte for byte, quirks included (`[a-]` is a range up to `]`, an
//! unterminated `[` runs to the end of the pattern, `[^]` matches any byte). Like Redis, the
//! bare pattern `*` does *not* match the empty string here: KEYS and SCAN special-case `*`
//! before calling this, which is why only `""` and exactly `*` match the empty key.

/// Whether `s` matches `pattern`; `nocase` for CONFIG GET / COMMAND LIST.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    matches(pattern, s, nocase, &mut skip_longer)
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// `skip_longer` is Redis's CVE-2022-36021 fix: once the rest of a pattern after a `*` fails
/// at every position, no earlier `*` can make it match, so the search stops.
fn matches(mut p: &[u8], mut s: &[u8], nocase: bool, skip_longer: &mut bool) -> bool {
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() >= 2 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if matches(&p[1..], s, nocase, skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let c = s[0];
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        // Unterminated class: step back so the advance below ends the pattern.
                        break;
                    } else if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == c {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut start, mut end, mut ch) = (p[0], p[2], c);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = start.to_ascii_lowercase();
                            end = end.to_ascii_lowercase();
                            ch = ch.to_ascii_lowercase();
                        }
                        p = &p[2..];
                        if ch >= start && ch <= end {
                            matched = true;
                        }
                    } else if eq(p[0], c, nocase) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
                // Redis's common advance past the `]` (or past nothing when unterminated).
                if p.is_empty() {
                    if s.is_empty() {
                        return true;
                    }
                    break;
                }
            }
            b'\\' => {
                if p.len() >= 2 {
                    p = &p[1..];
                }
                if !eq(p[0], s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
            other => {
                if !eq(other, s[0], nocase) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn table() {
        // (pattern, string, nocase, expected)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("", "", false, true),
            ("*", "", false, false), // the bare `*` is special-cased by KEYS/SCAN, not here
            ("**", "", false, false),
            ("*", "anything", false, true),
            ("**", "anything", false, true),
            ("a*", "a", false, true),
            ("a**", "a", false, true),
            ("a*b", "ab", false, true),
            ("a*b", "axxb", false, true),
            ("a*b", "axxc", false, false),
            ("*b*c", "xxbyyc", false, true),
            ("h?llo", "hello", false, true),
            ("h?llo", "hllo", false, false),
            ("h[ae]llo", "hallo", false, true),
            ("h[ae]llo", "hillo", false, false),
            ("h[^e]llo", "hallo", false, true),
            ("h[^e]llo", "hello", false, false),
            ("h[!e]llo", "h!llo", false, true), // `!` is an ordinary member
            ("h[!e]llo", "hallo", false, false),
            ("h[a-b]llo", "hbllo", false, true),
            ("h[a-b]llo", "hcllo", false, false),
            ("h[z-a]llo", "hmllo", false, true), // reversed range is swapped
            ("[]", "a", false, false),
            ("[]a", "a", false, false),
            ("[^]", "x", false, true),
            ("[^]", "", false, false),
            ("[\\]]", "]", false, true),
            ("[\\-]", "-", false, true),
            ("[a-]", "]", false, true), // range a..] swapped to ]..a
            ("h[a", "ha", false, true),
            ("h[a", "hallo", false, false),
            ("h\\*llo", "h*llo", false, true),
            ("h\\*llo", "hello", false, false),
            ("a\\", "a\\", false, true), // lone trailing backslash matches itself
            ("\\", "\\", false, true),
            ("HELLO", "hello", false, false),
            ("HELLO", "hello", true, true),
            ("h[A-Z]llo", "hello", true, true),
            ("h[E]llo", "hello", true, true),
            ("save", "SAVE", true, true),
            ("*max-*-entries*", "hash-max-ziplist-entries", false, true),
            ("a?", "a", false, false),
            ("?", "", false, false),
        ];
        for &(p, s, nocase, want) in cases {
            assert_eq!(
                glob_match(p.as_bytes(), s.as_bytes(), nocase),
                want,
                "{p:?} vs {s:?}"
            );
        }
    }

    #[test]
    fn binary_and_pathological() {
        assert!(glob_match(b"a\x00*", b"a\x00\xff", false));
        let s = vec![b'a'; 60];
        assert!(!glob_match(b"a*a*a*a*a*a*a*a*a*a*a*b", &s, false));
    }
}
