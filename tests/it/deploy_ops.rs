//! The operator's side of the deployment loop, through the real binary: `[deploy]`'s staging,
//! deploy and rollback commands run with the fix, commit and release in their environment (and
//! a failing one leaves the fix where it was, with the command's own words); `hephaestus fixes
//! reject` and `rollback` move a fix and refuse moves its state does not allow.

use std::path::Path;
use std::process::Output;

use hephaestus::model::deploy::store::Status;

use super::deploy::Loop;

/// `hephaestus fixes SPEC args…`.
fn fixes(spec: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hephaestus"))
        .arg("fixes")
        .arg(spec)
        .args(args)
        .output()
        .expect("hephaestus fixes")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The command failed, saying `why`.
fn refused(out: &Output, why: &str) {
    assert!(!out.status.success(), "expected a refusal: {}", text(out));
    assert!(text(out).contains(why), "{}", text(out));
}

/// Each operator command appends one line (its name and its environment) to `ops.log`.
fn recording(root: &Path) -> String {
    let log = root.join("ops.log").display().to_string();
    format!(
        "staging_command = \"echo stage $HEPHAESTUS_FIX $HEPHAESTUS_FIX_BRANCH $HEPHAESTUS_FIX_COMMIT >> {log}\"\n\
         deploy_command = \"echo deploy $HEPHAESTUS_RELEASE $HEPHAESTUS_FIX $HEPHAESTUS_COMMIT >> {log}\"\n\
         rollback_command = \"echo rollback $HEPHAESTUS_RELEASE $HEPHAESTUS_FIX $HEPHAESTUS_COMMIT >> {log}\"\n"
    )
}

fn ops(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("ops.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn staging_deploy_and_rollback_commands_ship_the_fix_and_take_it_back() {
    let root = super::model::scratch("ops-commands");
    let l = Loop::with_root(root.clone(), "auto", &recording(&root));
    l.first_run();
    let fix = l.book().fixes[0].clone();
    assert_eq!(
        (fix.status, fix.release.as_deref()),
        (Status::Production, Some("r1")),
        "{fix:#?}"
    );
    assert_eq!(
        ops(&root),
        [
            format!("stage fix-1 {} {}", fix.branch, fix.commit),
            format!("deploy r1 fix-1 {}", fix.commit),
        ],
        "the commands ran once each, told what to ship"
    );
    assert!(
        !l.show("production").contains("if len(values)"),
        "with a deploy command, the production branch is the command's business"
    );

    let out = fixes(&l.spec, &["rollback", "fix-1", "--why", "latency doubled"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "fix-1 rolled_back (release r1)\n"
    );
    assert_eq!(
        ops(&root).last().map(String::as_str),
        Some(format!("rollback r2 fix-1 {}", fix.commit).as_str())
    );
    let book = l.book();
    assert_eq!(book.fixes[0].status, Status::RolledBack);
    assert_eq!(book.fixes[0].rollback.as_deref(), Some("latency doubled"));
    let reasons: Vec<&str> = book.releases.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, ["deploy fix-1", "rollback fix-1"]);

    let again = fixes(&l.spec, &["rollback", "fix-1"]);
    refused(&again, "only a deployed fix can be rolled back");
    assert_eq!(ops(&root).len(), 3, "the refused rollback ran no command");
}

#[test]
fn a_failing_deploy_command_leaves_the_fix_staged_and_says_why() {
    let root = super::model::scratch("ops-fail");
    let deploy = "deploy_command = \"echo no route to the production cluster >&2; exit 7\"\n";
    let l = Loop::with_root(root, "manual", deploy);
    l.first_run();
    assert_eq!(l.book().fixes[0].status, Status::AwaitingApproval);
    let out = fixes(&l.spec, &["approve", "fix-1"]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("deploy") && said.contains("no route to the production cluster"),
        "{said}"
    );
    let book = l.book();
    assert_eq!(
        book.fixes[0].status,
        Status::AwaitingApproval,
        "still staged"
    );
    assert!(book.releases.is_empty(), "{:?}", book.releases);
}

#[test]
fn an_operator_rejects_a_staged_fix_and_it_never_ships() {
    let root = super::model::scratch("ops-reject");
    let l = Loop::with_root(root, "manual", "");
    l.first_run();
    let out = fixes(&l.spec, &["reject", "fix-1", "--why", "wrong layer"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fix-1 rejected\n");
    let fix = l.book().fixes[0].clone();
    assert_eq!(fix.status, Status::Rejected);
    assert!(
        fix.history
            .iter()
            .any(|e| e.what == "rejected: wrong layer"),
        "{:?}",
        fix.history
    );

    let approve = fixes(&l.spec, &["approve", "fix-1"]);
    refused(&approve, "only a staged fix awaiting approval");
    assert_eq!(l.show("production"), super::model::CALC, "nothing shipped");
    assert!(l.book().releases.is_empty());

    refused(&fixes(&l.spec, &["reject", "fix-9"]), "fix-9");
}
