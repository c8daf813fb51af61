//! Built-in reference tasks with answers any validator can check: integer arithmetic and word sorting.

use super::backend::{AnswerFuture, BackendError, MinerBackend};

/// Longest expression or text a reference task accepts.
const MAX_INPUT: usize = 4096;
/// Deepest parenthesis nesting accepted.
const MAX_DEPTH: usize = 64;

/// Serves the reference tasks `arith` (evaluate an integer expression) and `sort` (sort words).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl Reference {
    /// The tasks this backend serves.
    pub const TASKS: [&'static str; 2] = ["arith", "sort"];

    /// The correct answer to `input` for `task`.
    pub fn expected(task: &str, input: &[u8]) -> Result<Vec<u8>, BackendError> {
        if input.len() > MAX_INPUT {
            return Err(BackendError::InvalidInput(format!(
                "input of {} bytes is over {MAX_INPUT}",
                input.len()
            )));
        }
        let text = std::str::from_utf8(input)
            .map_err(|_| BackendError::InvalidInput("input is not UTF-8".into()))?;
        match task {
            "arith" => evaluate_arithmetic(text).map(|v| v.to_string().into_bytes()),
            "sort" => Ok(sort_words(text).into_bytes()),
            other => Err(BackendError::UnknownTask(other.to_string())),
        }
    }
}

impl MinerBackend for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn answer<'a>(&'a self, task: &'a str, input: &'a [u8]) -> AnswerFuture<'a> {
        Box::pin(async move { Self::expected(task, input) })
    }
}

/// The words of `text` (split on whitespace), sorted bytewise and joined by single spaces.
pub fn sort_words(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

/// Evaluates `+ - * /` and parentheses over 64-bit integers (division truncates); overflow, division
/// by zero and syntax errors are errors.
pub fn evaluate_arithmetic(text: &str) -> Result<i64, BackendError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let value = parser.expression()?;
    parser.skip_spaces();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("unexpected character"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> BackendError {
        BackendError::InvalidInput(format!("{what} at offset {}", self.pos))
    }

    fn skip_spaces(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(u8::is_ascii_whitespace)
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.bytes.get(self.pos).copied()
    }

    fn overflow(&self) -> BackendError {
        self.error("overflow")
    }

    fn expression(&mut self) -> Result<i64, BackendError> {
        let mut value = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            value = if op == b'+' {
                value.checked_add(rhs)
            } else {
                value.checked_sub(rhs)
            }
            .ok_or_else(|| self.overflow())?;
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<i64, BackendError> {
        let mut value = self.factor()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            let rhs = self.factor()?;
            value = if op == b'*' {
                value.checked_mul(rhs).ok_or_else(|| self.overflow())?
            } else if rhs == 0 {
                return Err(self.error("division by zero"));
            } else {
                value.checked_div(rhs).ok_or_else(|| self.overflow())?
            };
        }
        Ok(value)
    }

    fn factor(&mut self) -> Result<i64, BackendError> {
        match self.peek() {
            Some(b'(') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.error("nesting too deep"));
                }
                self.pos += 1;
                let value = self.expression()?;
                if self.peek() != Some(b')') {
                    return Err(self.error("expected )"));
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(value)
            }
            Some(b'-') => {
                self.pos += 1;
                self.factor()?.checked_neg().ok_or_else(|| self.overflow())
            }
            Some(b'0'..=b'9') => {
                let start = self.pos;
                while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    self.pos += 1;
                }
                std::str::from_utf8(&self.bytes[start..self.pos])
                    .ok()
                    .and_then(|digits| digits.parse::<i64>().ok())
                    .ok_or_else(|| self.overflow())
            }
            Some(_) => Err(self.error("unexpected character")),
            None => Err(self.error("unexpected end")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        assert_eq!(evaluate_arithmetic("1 + 2 * 3").ok(), Some(7));
        assert_eq!(evaluate_arithmetic("(1 + 2) * 3").ok(), Some(9));
        assert_eq!(evaluate_arithmetic(" -4 / 3 ").ok(), Some(-1));
        assert_eq!(evaluate_arithmetic("10 - 2 - 3").ok(), Some(5));
        assert_eq!(evaluate_arithmetic("--5").ok(), Some(5));
        for bad in [
            "",
            "1 +",
            "2 ** 3",
            "(1",
            "1 / 0",
            "9223372036854775807 + 1",
            "abc",
            "1 2",
        ] {
            assert!(evaluate_arithmetic(bad).is_err(), "{bad:?} accepted");
        }
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(evaluate_arithmetic(&deep).is_err());
    }

    #[test]
    fn sorting_and_the_backend() {
        assert_eq!(sort_words("pear  apple\tfig\n"), "apple fig pear");
        assert_eq!(
            Reference::expected("sort", b"b a").ok(),
            Some(b"a b".to_vec())
        );
        assert_eq!(
            Reference::expected("arith", b"6*7").ok(),
            Some(b"42".to_vec())
        );
        assert!(matches!(
            Reference::expected("translate", b"x"),
            Err(BackendError::UnknownTask(_))
        ));
        assert!(Reference::expected("sort", &[0xff, 0xfe]).is_err());
    }
}
