//! Kafka under faults, each error event accounted for: the job SIGKILLed mid-run and started
//! again (nothing lost, nothing counted twice), the output disk full then a restart, and the
//! broker stopped mid-run (the job waits, resumes, loses nothing).

use std::path::Path;
use std::time::Duration;

use hephaestus::commands::replay;
use hephaestus::core::shutdown::Shutdown;

use crate::broker::{Broker, committed, read_all};
use crate::common::{latest_counts, plan, run_until, summary_of};
use crate::kafka_accounting::{
    Job, account, compare, cut_lines, file_counts, generate, kafka_spec, replay_request,
    seen_errors, sent_errors, stop_when_caught_up,
};

#[test]
fn a_job_killed_mid_run_and_restarted_loses_nothing_and_counts_nothing_twice() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(dir.path(), 4, 40_000);
    let total_lines: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .expect("read log")
                .lines()
                .count()
        })
        .sum();
    let (error_events, expected) = file_counts(&files);
    assert!(expected.len() >= 6 && error_events > 10_000);

    // Load at 20k lines/s while the job runs; SIGKILL it as soon as it has committed offsets
    // (its first checkpoints are done and it is reading on), then start it again on the same
    // output file.
    let req = replay_request(&broker.addr, files, Some(20_000.0));
    let producer = std::thread::spawn(move || replay::replay(&req, &Shutdown::default()));
    std::thread::sleep(Duration::from_millis(300));
    let spec = kafka_spec(dir.path(), &broker.addr, "crash");
    let out = dir.path().join("incidents.jsonl");
    let mut first = Job::spawn(&spec, &out, &dir.path().join("run1.log"), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while committed(&broker.addr, "crash", "raw").iter().sum::<i64>() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never committed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(700));
    first.signal("-KILL");
    let _ = first.wait();
    let at_cut = cut_lines(&dir.path().join("state"));
    let written_by_first = std::fs::read_to_string(&out)
        .expect("run 1 output")
        .lines()
        .count();

    let second = Job::spawn(&spec, &out, &dir.path().join("run2.log"), &[]);
    let sent = producer.join().expect("producer thread").expect("replay");
    assert_eq!(sent.lines, total_lines as u64);
    let stderr = stop_when_caught_up(second, &broker.addr, "crash", sent.lines, 180);

    // The second run read exactly what its restored state had not seen, once.
    let summary = summary_of(&stderr);
    let window = summary["lines"].as_u64().expect("lines");
    assert!(at_cut > 0, "the first run left no cut before the kill");
    assert_eq!(window, sent.lines - at_cut, "resumed at the cut's offsets");
    assert!(window < sent.lines, "the first run was killed mid-run");

    // Every error event is counted once, in the output file (cut back to the cut, then
    // appended to) and on the incidents topic alike.
    let file = latest_counts(
        std::fs::read_to_string(&out)
            .expect("output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON")),
    );
    let (lost, twice) = compare(&expected, &file);
    assert_eq!(
        (lost, twice),
        (0, 0),
        "the incidents file counts each event once"
    );
    let topic = read_all(&broker.addr, "crash.incidents");
    let counts = latest_counts(
        topic
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).expect("JSON")),
    );
    assert_eq!(
        compare(&expected, &counts),
        (0, 0),
        "the incidents topic too"
    );

    // Error events, by position: none lost; what the first run produced past its cut is
    // produced again (no transactions), never more than the re-read window holds.
    let sent_err = sent_errors(&broker.addr);
    assert_eq!(
        sent_err.len() as u64,
        error_events,
        "one event per ERROR line"
    );
    let seen = seen_errors(&broker.addr, "crash.errors");
    let (err_lost, err_twice) = account(&sent_err, &seen);
    let second_events = summary["error_events"].as_u64().expect("error events");
    eprintln!(
        "SIGKILL mid-run: run 1 wrote {written_by_first} incident lines; run 2 resumed at the cut \
         ({at_cut} lines), re-read {window} of {} lines ({second_events} error events); \
         errors topic: {err_lost} lost, {err_twice} produced twice",
        sent.lines
    );
    assert_eq!(err_lost, 0, "no error event lost");
    assert!(
        err_twice <= second_events,
        "duplicates only from the re-read window"
    );
    let counted: u64 = file.values().sum();
    crate::common::reliability(
        "job killed with SIGKILL mid-run, restarted (Kafka source, checkpoints): incidents file",
        &format!(
            "SIGKILL after the first commits; {} lines at 20 k lines/s",
            sent.lines
        ),
        (error_events, counted, lost, twice),
    );
    crate::common::reliability(
        "same run: errors topic, by position (no Kafka transactions: past-the-cut events are \
         produced again)",
        &format!("{window} lines re-read after the restart"),
        (
            sent_err.len() as u64,
            seen.len() as u64,
            err_lost,
            err_twice,
        ),
    );
}

#[test]
fn the_job_waits_out_a_broker_outage_and_loses_nothing() {
    let mut broker = Broker::start();
    let addr = broker.addr.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    // About 6 s of replay at 2,000 lines/s: the outage falls in the middle.
    let logs = generate(dir.path(), 2, 5_000);
    let (error_events, expected) = file_counts(&logs);

    let req = replay_request(&addr, logs, Some(2_000.0));
    let producer = std::thread::spawn(move || replay::replay(&req, &Shutdown::default()));
    let spec = kafka_spec(dir.path(), &addr, "outage");
    let p = plan(&spec, &[], 2, dir.path());
    let out_dir = dir.path().to_path_buf();
    let stop = Shutdown::default();
    let job = {
        let stop = stop.clone();
        std::thread::spawn(move || run_until(p, &out_dir, stop))
    };

    // The broker stops answering for 3 s mid-replay (producer and job both see it), then
    // goes on.
    std::thread::sleep(Duration::from_millis(1500));
    broker.pause(Duration::from_secs(3));

    // Once everything sent has been delivered and the job has committed all of it, stop it.
    let sent = producer.join().expect("producer thread").expect("replay");
    // Seconds when the machine is free; far more when other jobs load both cores.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while committed(&addr, "outage", "raw").iter().sum::<i64>() < sent.lines as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not catch up after the outage"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.trigger();
    let out = job.join().expect("job thread");
    assert_eq!(out.summary.lines, sent.lines, "every line read once");
    let finals = latest_counts(
        out.incidents
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON")),
    );
    let (lost, twice) = compare(&expected, &finals);
    assert_eq!((lost, twice), (0, 0), "same counts as the file replay");
    let topic = read_all(&addr, "outage.incidents");
    assert_eq!(
        topic.len(),
        out.incidents.len(),
        "every incident update delivered once"
    );
    let sent_err = sent_errors(&addr);
    assert_eq!(
        sent_err.len() as u64,
        error_events,
        "one event per ERROR line"
    );
    let seen = seen_errors(&addr, "outage.errors");
    let (err_lost, err_twice) = account(&sent_err, &seen);
    assert_eq!(err_lost, 0, "no error event lost");
    crate::common::reliability(
        "Kafka broker stopped (SIGSTOP) and resumed mid-run: incidents",
        &format!(
            "tansu stopped for 3 s while {} lines were replayed",
            sent.lines
        ),
        (error_events, finals.values().sum(), lost, twice),
    );
    crate::common::reliability(
        "same run: errors topic, by position",
        "producer retries across the outage (idempotent producer)",
        (error_events, seen.len() as u64, err_lost, err_twice),
    );
}

#[test]
fn a_full_output_disk_stops_the_job_and_a_restart_loses_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = generate(dir.path(), 2, 5_000);
    let (error_events, expected) = file_counts(&files);
    let sent = replay::replay(
        &replay_request(&broker.addr, files, None),
        &Shutdown::default(),
    )
    .expect("replay");
    let spec = dir.path().join("disk.toml");
    std::fs::write(
        &spec,
        format!(
            "[job]\nname = \"disk\"\nworkers = 2\ncheckpoint = \"200ms\"\nstate_dir = \"{}\"\n\
             [[sources]]\ntopic = \"raw\"\nservice = \"shop\"\n\
             [kafka]\nbrokers = \"{}\"\ngroup = \"disk\"\n",
            dir.path().join("state").display(),
            broker.addr
        ),
    )
    .expect("spec");

    // Run 1 writes its incidents to /dev/full (every write fails with ENOSPC): the job stops
    // with the reason, and what it committed is only what it had written (nothing).
    let run1 = Job::spawn(
        &spec,
        Path::new("/dev/full"),
        &dir.path().join("run1.log"),
        &[],
    );
    let (status, stderr) = run1.wait();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("writing incidents: No space left on device"),
        "{stderr}"
    );
    let committed_lines: i64 = committed(&broker.addr, "disk", "raw").iter().sum();
    assert!(
        (committed_lines as u64) < sent.lines,
        "run 1 committed past what it could not write: {committed_lines} of {}",
        sent.lines
    );

    // Run 2, the disk freed: there is no complete cut to resume from (run 1 could write
    // nothing), so it starts over from the committed offsets with empty state, and counts
    // every error event exactly once.
    let out2 = dir.path().join("run2.jsonl");
    let stderr = stop_when_caught_up(
        Job::spawn(&spec, &out2, &dir.path().join("run2.log"), &[]),
        &broker.addr,
        "disk",
        sent.lines,
        120,
    );
    let summary = summary_of(&stderr);
    assert_eq!(
        summary["lines"].as_u64(),
        Some(sent.lines - committed_lines as u64),
        "run 2 resumed at the committed offsets"
    );
    let counts = latest_counts(
        std::fs::read_to_string(&out2)
            .expect("run 2 output")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON")),
    );
    let (lost, twice) = compare(&expected, &counts);
    assert_eq!((lost, twice), (0, 0), "every error event counted once");
    crate::common::reliability(
        "output disk full (incidents file), job restarted with room (Kafka source)",
        &format!(
            "incidents written to /dev/full (ENOSPC); {} lines; run 1 committed {committed_lines}",
            sent.lines
        ),
        (error_events, counts.values().sum(), lost, twice),
    );
}
