//! Tests of the miner's behaviour on the failure modes it is built against.

use super::*;
use crate::mask::mask;

fn mine(lines: &[&str]) -> (Miner, Vec<Slot>) {
    let mut m = Miner::new(3, 10_000);
    let slots = lines.iter().map(|l| m.insert(&mask(l)).slot).collect();
    (m, slots)
}

fn ids_of(m: &mut Miner, slots: &[Slot]) -> Vec<TemplateId> {
    slots
        .iter()
        .map(|&s| m.resolve(s).map(|(id, _)| id).unwrap_or(0))
        .collect()
}

#[test]
fn three_words_make_a_variable_two_make_a_fork() {
    let (mut m, s) = mine(&[
        "cupsd startup succeeded",
        "cupsd shutdown succeeded",
        "cupsd startup succeeded",
    ]);
    let ids = ids_of(&mut m, &s);
    assert_ne!(ids[0], ids[1], "two alternatives are two templates");
    assert_eq!(ids[0], ids[2]);
    let (mut m, s) = mine(&[
        "Invalid user alice from 1.2.3.4",
        "Invalid user bob from 1.2.3.5",
        "Invalid user carol from 1.2.3.6",
    ]);
    let ids = ids_of(&mut m, &s);
    assert!(
        ids.iter().all(|&i| i == ids[0]),
        "the earlier lines follow the merge"
    );
    assert_eq!(
        m.resolve(s[0]).map(|(_, t)| t).as_deref(),
        Some("Invalid user <*> from <*>")
    );
    // What the next line's match carries (the template its incident reports).
    let next = m.insert(&mask("Invalid user dave from 1.2.3.7"));
    assert_eq!(&*next.template, "Invalid user <*> from <*>");
}

#[test]
fn a_word_next_to_a_masked_variable_is_that_variable() {
    let (mut m, s) = mine(&[
        "lookup for ns.example.com [1.2.3.4] failed",
        "lookup for 10.0.0.7 [1.2.3.5] failed",
    ]);
    let ids = ids_of(&mut m, &s);
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn variable_length_lists_and_optional_values_are_one_template() {
    let (mut m, s) = mine(&[
        "ask 10.0.0.1:50010 to delete blk_1111",
        "ask 10.0.0.2:50010 to delete blk_2222 blk_3333 blk_4444",
        "close, 403 bytes sent, 426 bytes received",
        "close, 1165 bytes (1.13 KB) sent, 815 bytes received",
    ]);
    let ids = ids_of(&mut m, &s);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[2], ids[3]);
}

#[test]
fn messages_differing_only_in_the_last_word_stay_apart() {
    let (mut m, s) = mine(&["Link error", "Link ok", "Link error", "Link ok"]);
    let ids = ids_of(&mut m, &s);
    assert_ne!(ids[0], ids[1]);
    assert_eq!((ids[0], ids[1]), (ids[2], ids[3]));
}

#[test]
fn glued_tokens_are_split() {
    let (mut m, s) = mine(&[
        "login user=alice status=ok",
        "login user=bob status=ok",
        "login user=eve status=failed",
    ]);
    let ids = ids_of(&mut m, &s);
    assert!(ids.iter().all(|&i| i == ids[0]), "values after = vary");
    assert_eq!(
        m.resolve(s[0]).map(|(_, t)| t).as_deref(),
        Some("login user=<*> status=<*>")
    );
}

#[test]
fn replaying_adds_no_templates() {
    let lines: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "worker {} finished job {} in {}ms",
                ["a", "b", "c", "d"][i % 4],
                i,
                i * 7
            )
        })
        .collect();
    let mut m = Miner::new(3, 10_000);
    for l in &lines {
        m.insert(&mask(l));
    }
    let after_one = m.len();
    for _ in 0..5 {
        for l in &lines {
            m.insert(&mask(l));
        }
    }
    assert_eq!(m.len(), after_one);
}

#[test]
fn bounded_with_eviction() {
    let mut m = Miner::new(3, 64);
    for i in 0..5000u32 {
        let a = format!("w{}", char::from(b'a' + (i % 26) as u8)).repeat((i % 7 + 1) as usize);
        let b = format!("q{}", char::from(b'a' + (i / 26 % 26) as u8)).repeat((i % 5 + 1) as usize);
        m.insert(&[a, "x".into(), b, "y".into()]);
        assert!(m.len() <= 64);
    }
    assert!(m.evicted() > 0);
}
