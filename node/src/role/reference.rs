//! Built-in reference tasks with answers any validator can check, integer arithmetic and word
//! sorting: their answers (served by the miner's `reference` backend) and their challenges (sent by
//! the validator's challenger).

/// Longest expression or text a reference task accepts.
const MAX_INPUT: usize = 4096;
/// Deepest parenthesis nesting accepted.
const MAX_DEPTH: usize = 64;

/// The reference tasks.
pub const TASKS: [&str; 2] = ["arith", "sort"];

/// Why a reference task has no answer for an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The input is not acceptable for the task (too long, not UTF-8, not a valid expression).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The task is not a reference task.
    #[error("unknown task {0}")]
    UnknownTask(String),
}

/// The correct answer to `input` for `task`.
pub fn expected(task: &str, input: &[u8]) -> Result<Vec<u8>, TaskError> {
    if input.len() > MAX_INPUT {
        return Err(TaskError::InvalidInput(format!(
            "input of {} bytes is over {MAX_INPUT}",
            input.len()
        )));
    }
    let text = std::str::from_utf8(input)
        .map_err(|_| TaskError::InvalidInput("input is not UTF-8".into()))?;
    match task {
        "arith" => evaluate_arithmetic(text).map(|v| v.to_string().into_bytes()),
        "sort" => Ok(sort_words(text).into_bytes()),
        other => Err(TaskError::UnknownTask(other.to_string())),
    }
}

/// Words challenges are drawn from.
const WORDS: [&str; 12] = [
    "apple", "birch", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris", "juniper",
    "kestrel", "lichen",
];

/// A challenge for `task` drawn from `seed`: the input and its correct answer, or `None` if `task`
/// is not a reference task.
pub fn challenge(task: &str, seed: u64) -> Option<(Vec<u8>, Vec<u8>)> {
    let mix = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let input = match task {
        "arith" => format!(
            "({} + {}) * {} - {}",
            mix % 1000,
            (mix >> 10) % 1000,
            (mix >> 20) % 100,
            (mix >> 30) % 10_000
        ),
        "sort" => {
            let mut words: Vec<&str> = (0..6)
                .map(|i| WORDS[((mix >> (i * 5)) % WORDS.len() as u64) as usize])
                .collect();
            // An input already in order would be answered right by a miner that echoes it.
            if words.is_sorted() {
                words.reverse();
            }
            // All one word: put a larger word first (or a smaller one last).
            if words.is_sorted() {
                let last = WORDS.len() - 1;
                if words[0] == WORDS[last] {
                    words[5] = WORDS[0];
                } else {
                    words[0] = WORDS[last];
                }
            }
            words.join(" ")
        }
        _ => return None,
    };
    let expected = expected(task, input.as_bytes()).ok()?;
    Some((input.into_bytes(), expected))
}

/// The words of `text` (split on whitespace), sorted bytewise and joined by single spaces.
pub fn sort_words(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

/// Evaluates `+ - * /` and parentheses over 64-bit integers (division truncates); overflow, division
/// by zero and syntax errors are errors.
pub fn evaluate_arithmetic(text: &str) -> Result<i64, TaskError> {
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
    fn error(&self, what: &str) -> TaskError {
        TaskError::InvalidInput(format!("{what} at offset {}", self.pos))
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

    fn overflow(&self) -> TaskError {
        self.error("overflow")
    }

    fn expression(&mut self) -> Result<i64, TaskError> {
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

    fn term(&mut self) -> Result<i64, TaskError> {
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

    fn factor(&mut self) -> Result<i64, TaskError> {
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
                // A run of signs is counted, not recursed into: input length bounds no depth.
                let mut negations = 0usize;
                while self.peek() == Some(b'-') {
                    self.pos += 1;
                    negations += 1;
                }
                let mut value = self.factor()?;
                for _ in 0..negations {
                    value = value.checked_neg().ok_or_else(|| self.overflow())?;
                }
                Ok(value)
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
        assert!(matches!(
            evaluate_arithmetic(&deep),
            Err(TaskError::InvalidInput(m)) if m.starts_with("nesting too deep")
        ));
        let signs = format!("{}7", "-".repeat(4000));
        assert_eq!(evaluate_arithmetic(&signs).ok(), Some(7));
        assert_eq!(evaluate_arithmetic(&format!("-{signs}")).ok(), Some(-7));
    }

    #[test]
    fn sorting_and_answers() {
        assert_eq!(sort_words("pear  apple\tfig\n"), "apple fig pear");
        assert_eq!(expected("sort", b"b a").ok(), Some(b"a b".to_vec()));
        assert_eq!(expected("arith", b"6*7").ok(), Some(b"42".to_vec()));
        assert!(matches!(
            expected("translate", b"x"),
            Err(TaskError::UnknownTask(_))
        ));
        assert!(matches!(
            expected("sort", &[0xff, 0xfe]),
            Err(TaskError::InvalidInput(m)) if m == "input is not UTF-8"
        ));
    }

    #[test]
    fn challenges_carry_their_answers() {
        for seed in [0, 1, u64::MAX, 0x1234_5678_9abc_def0] {
            for task in TASKS {
                let (input, answer) = challenge(task, seed).expect("a reference task");
                assert_eq!(expected(task, &input).ok(), Some(answer));
            }
        }
        assert_eq!(challenge("translate", 1), None);
    }

    #[test]
    fn no_challenge_is_its_own_answer() {
        // Else a miner that echoes its input would earn on some challenges.
        for seed in 0..200_000u64 {
            for task in TASKS {
                let (input, answer) = challenge(task, seed).expect("a reference task");
                assert_ne!(input, answer, "seed {seed}, {task}");
            }
        }
    }
}
