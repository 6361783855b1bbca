//! The shapes of log the miner must hold on without having seen them (one test per shape):
//! lines written for these tests, mined as `templates` mines (one partition, settled at the
//! end). Each helper asserts which lines share a template and which do not.

use super::*;
use crate::mask::mask;

/// Mines `lines` in one partition and settles; returns each line's final template id.
fn mine(lines: &[&str]) -> (Miner, Vec<TemplateId>) {
    let mut m = Miner::new(3, 10_000).one_partition();
    let slots: Vec<Slot> = lines.iter().map(|l| m.insert(&mask(l)).slot).collect();
    m.settle();
    let ids = slots
        .iter()
        .map(|&s| m.resolve(s).map_or(0, |(id, _)| id))
        .collect();
    (m, ids)
}

/// Asserts that the lines fall into the given groups (by index), one template per group.
fn groups(lines: &[&str], want: &[&[usize]]) {
    let (mut m, ids) = mine(lines);
    let text = |i: usize, m: &mut Miner| format!("{:?}", m.resolve(i as Slot));
    for g in want {
        for &i in &g[1..] {
            assert_eq!(ids[i], ids[g[0]], "{:?} and {:?}", lines[g[0]], lines[i]);
        }
    }
    for (a, ga) in want.iter().enumerate() {
        for gb in &want[a + 1..] {
            let (x, y) = (ga[0], gb[0]);
            assert_ne!(
                ids[x],
                ids[y],
                "{:?} vs {:?}: {}",
                lines[x],
                lines[y],
                text(x, &mut m)
            );
        }
    }
}

#[test]
fn values_of_varying_length_are_one_variable() {
    groups(
        &[
            "evicting kappa lambda from cache tier",
            "evicting sigma from cache tier",
            "evicting omega tau rho from cache tier",
            "evicted segment orion after compaction",
            "evicted segment vega lyra after compaction",
            "sent 10 bytes (1 KB) to peer",
            "sent 12 bytes to peer",
        ],
        &[&[0, 1, 2], &[3, 4], &[5, 6]],
    );
}

#[test]
fn values_with_few_words_are_variables() {
    groups(
        &[
            "flag enabled=true for tenant",
            "flag enabled=false for tenant",
            "port state:up;mode:fast changed",
            "port state:down;mode:slow changed",
            "link to rack reported",
        ],
        &[&[0, 1], &[2, 3], &[4]],
    );
}

#[test]
fn word_like_ids_hex_without_digits_and_first_words_are_variables() {
    groups(
        &[
            "session deadbeef opened for kappa",
            "session cafebabe opened for lambda",
            "chrome.exe open through proxy gateway HTTPS",
            "firefox.exe open through proxy gateway HTTPS",
            "outlook.exe open through proxy gateway HTTPS",
            "orion joined the ring at epoch",
            "vega joined the ring at epoch",
        ],
        &[&[0, 1], &[2, 3, 4], &[5, 6]],
    );
}

#[test]
fn glued_pairs_keep_their_keys() {
    let lines = [
        "a=1,b=2,c=3",
        "a=4,b=5,c=6",
        "a=7,b=8,c=9",
        "x:1;y:2",
        "x:3;y:4",
        "x:5;y:6",
        "speed=10;dir=up;mode=auto",
        "speed=11;dir=down;mode=manual",
    ];
    groups(&lines, &[&[0, 1, 2], &[3, 4, 5], &[6, 7]]);
    let (mut m, _) = mine(&lines);
    assert!(m.templates().all(|(_, t, _)| t != "<*>"), "no bare <*>");
    assert_eq!(
        m.resolve(0).map(|(_, t)| t).as_deref(),
        Some("a=<*>,b=<*>,c=<*>")
    );
}

#[test]
fn optional_parts_do_not_split_an_event() {
    groups(
        &[
            "connect to store failed (retry 3)",
            "connect to store failed",
            "connect to store failed (retry 4)",
            "handshake with broker LOCAL(17) timed out",
            "handshake with broker timed out",
            "worker stopped",
        ],
        &[&[0, 1, 2], &[3, 4], &[5]],
    );
}

#[test]
fn a_different_leading_word_or_count_of_leading_fields_is_the_same_event() {
    groups(
        &[
            "nodeaa rackbb worker accepted the lease",
            "nodecc worker accepted the lease",
            "nodedd rackee shelfff worker accepted the lease",
            "worker released the lease",
        ],
        &[&[0, 1, 2], &[3]],
    );
}

#[test]
fn forks_of_common_words_stay_apart() {
    // Words seen in several lines are constants, however few the alternatives.
    groups(
        &[
            "cupsd startup succeeded",
            "cupsd shutdown succeeded",
            "cupsd startup succeeded",
            "cupsd shutdown succeeded",
            "syslogd startup succeeded",
            "klogd startup succeeded",
        ],
        &[&[0, 2], &[1, 3], &[4], &[5]],
    );
}
