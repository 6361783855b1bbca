//! Every spec in dataflows/ validates; every broken spec in fixtures/specs/broken fails with the
//! message its first line states (`# expect: …`).

use hephaestus::spec::{Overrides, Plan};

use crate::common::{files_with_ext, root};

#[test]
fn every_dataflow_spec_validates() {
    let files = files_with_ext(&root().join("dataflows"), "toml");
    assert!(files.len() >= 2, "dataflows/ holds the shipped specs");
    for spec in files {
        let plan = Plan::load(&spec, Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        let inputs = plan.inputs.len() + usize::from(plan.kafka_source.is_some());
        assert!(inputs > 0, "{} has inputs", spec.display());
    }
}

#[test]
fn broken_specs_fail_with_their_stated_message() {
    let files = files_with_ext(&root().join("fixtures/specs/broken"), "toml");
    assert!(files.len() >= 5);
    for spec in files {
        let text = std::fs::read_to_string(&spec).expect("read spec");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} must start with `# expect: <message>`", spec.display()));
        match Plan::load(&spec, Overrides::default()) {
            Ok(_) => panic!(
                "{} was accepted; expected an error containing {expect:?}",
                spec.display()
            ),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(expect),
                    "{}: error {msg:?} does not contain {expect:?}",
                    spec.display()
                );
                assert!(
                    !msg.contains('\n'),
                    "{}: errors are one line: {msg:?}",
                    spec.display()
                );
            }
        }
    }
}
