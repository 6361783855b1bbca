//! What counts as reproducing an incident: the reproducing test must fail *with the incident's
//! failure* before the fix, not merely fail.
//!
//! In: the incident's fault (exception type, panic message) and the test's run. Out: accepted,
//! or why not: a run that passed, one that failed some other way, or one that says nothing
//! (timed out, killed by a signal, did not build or import), which is inconclusive. No state.

use super::sandbox::{Exit, Run};
use crate::trace::fault::Fault;

/// Output that shows a test never ran its assertion: the project or the test did not build or
/// import.
const DID_NOT_RUN: &[&str] = &[
    "ModuleNotFoundError",
    "ImportError",
    "SyntaxError",
    "IndentationError",
    "error[E",
    "could not compile",
    "error: could not find",
];

/// The failure a reproducing test must show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reproduction {
    /// Any of these in the test's output: the exception type (full and short name) or the
    /// panic message. Empty (an incident without a trace): any failure that ran.
    pub signatures: Vec<String>,
}

/// Why a run does not reproduce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReproduced {
    /// It passed.
    Passed,
    /// It failed, but not with the incident's failure.
    OtherFailure(String),
    /// It says nothing about the fault: timed out, killed, did not build or import.
    Inconclusive(String),
}

impl std::fmt::Display for NotReproduced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReproduced::Passed => write!(f, "the test passed before the fix"),
            NotReproduced::OtherFailure(why) => write!(f, "the test fails, but {why}"),
            NotReproduced::Inconclusive(why) => write!(f, "inconclusive: {why}"),
        }
    }
}

impl Reproduction {
    /// The failure of `fault`, when the incident has one.
    pub fn of(fault: Option<&Fault>) -> Reproduction {
        let Some(f) = fault else {
            return Reproduction::default();
        };
        let mut signatures = Vec::new();
        let panic = f.exception == "panic" || f.exception.is_empty();
        if panic {
            let message = f.message.trim();
            signatures.push(if message.is_empty() {
                "panicked".to_string()
            } else {
                message.to_string()
            });
        } else {
            signatures.push(f.exception.clone());
            if let Some((_, short)) = f.exception.rsplit_once(['.', ':']) {
                signatures.push(short.to_string());
            }
        }
        Reproduction { signatures }
    }

    /// Whether `run`, the reproducing test before the fix, shows the incident's failure.
    pub fn judge(&self, run: &Run) -> Result<(), NotReproduced> {
        let code = match run.exit {
            Exit::TimedOut => {
                return Err(NotReproduced::Inconclusive(format!(
                    "the test timed out after {:.1} s",
                    run.seconds
                )));
            }
            Exit::Signal(n) => {
                return Err(NotReproduced::Inconclusive(format!(
                    "the test was killed by signal {n}"
                )));
            }
            Exit::Code(0) => return Err(NotReproduced::Passed),
            Exit::Code(c) => c,
        };
        let out = format!("{}\n{}", run.stdout, run.stderr);
        if self.signatures.iter().any(|s| out.contains(s.as_str())) {
            return Ok(());
        }
        if let Some(marker) = DID_NOT_RUN.iter().find(|m| out.contains(**m)) {
            return Err(NotReproduced::Inconclusive(format!(
                "the test did not build or import (`{marker}` in its output)"
            )));
        }
        if self.signatures.is_empty() {
            return Ok(());
        }
        Err(NotReproduced::OtherFailure(format!(
            "exit {code} without the incident's failure ({})",
            self.signatures.join(" or ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Lang;

    fn fault(exception: &str, message: &str) -> Fault {
        Fault {
            language: Lang::Unknown,
            exception: exception.into(),
            message: message.into(),
            frames: Vec::new(),
        }
    }

    fn run(exit: Exit, out: &str) -> Run {
        Run {
            exit,
            stdout: out.into(),
            stderr: String::new(),
            truncated: false,
            seconds: 1.0,
        }
    }

    fn python() -> Reproduction {
        Reproduction::of(Some(&fault("ZeroDivisionError", "division by zero")))
    }

    #[test]
    fn only_the_incidents_failure_reproduces_it() {
        let r = python();
        let seen = "Traceback …\nZeroDivisionError: division by zero";
        assert_eq!(r.judge(&run(Exit::Code(1), seen)), Ok(()));
        assert_eq!(
            r.judge(&run(Exit::Code(0), "ok")),
            Err(NotReproduced::Passed)
        );
        assert!(matches!(
            r.judge(&run(Exit::Code(1), "AssertionError: 3 != 4")),
            Err(NotReproduced::OtherFailure(_))
        ));
    }

    #[test]
    fn timeouts_signals_and_broken_builds_are_inconclusive() {
        let r = python();
        for (exit, out, word) in [
            (Exit::TimedOut, "", "timed out"),
            (Exit::Signal(9), "", "signal 9"),
            (
                Exit::Code(1),
                "ModuleNotFoundError: No module named 'calc'",
                "import",
            ),
            (
                Exit::Code(1),
                "  File \"t.py\", line 3\nSyntaxError: invalid syntax",
                "import",
            ),
            (
                Exit::Code(101),
                "error[E0425]: cannot find value `x`",
                "build",
            ),
        ] {
            match r.judge(&run(exit.clone(), out)) {
                Err(NotReproduced::Inconclusive(why)) => assert!(why.contains(word), "{why}"),
                other => panic!("{exit:?} {out:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_panic_is_matched_by_its_message_and_a_java_exception_by_either_name() {
        let rust = Reproduction::of(Some(&fault(
            "panic",
            "called `Option::unwrap()` on a `None` value",
        )));
        let out =
            "thread 'x' panicked at src/lib.rs:3:5:\ncalled `Option::unwrap()` on a `None` value";
        assert_eq!(rust.judge(&run(Exit::Code(101), out)), Ok(()));
        let other = "thread 'x' panicked at src/lib.rs:9:1:\nindex out of bounds";
        assert!(matches!(
            rust.judge(&run(Exit::Code(101), other)),
            Err(NotReproduced::OtherFailure(_))
        ));
        let java = Reproduction::of(Some(&fault("java.lang.IllegalStateException", "")));
        assert_eq!(
            java.signatures,
            ["java.lang.IllegalStateException", "IllegalStateException"]
        );
    }
}
