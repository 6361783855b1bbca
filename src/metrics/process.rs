//! Process metrics, read from `/proc/self` when `/metrics` is scraped: resident memory and CPU
//! seconds. In: nothing. Out: two lines of Prometheus text. No state. Elsewhere than Linux the
//! lines are left out.

use std::fmt::Write as _;

use super::names;

/// `/proc` reports CPU time in ticks of 1/100 s (USER_HZ, fixed by the kernel ABI).
const TICKS_PER_SECOND: f64 = 100.0;

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The most resident memory the process has had (`VmHWM`).
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `)`.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

pub fn render(out: &mut String) {
    if let Some(b) = resident_bytes() {
        let _ = writeln!(
            out,
            "# TYPE {} gauge\n{} {b}",
            names::RESIDENT_MEMORY,
            names::RESIDENT_MEMORY
        );
    }
    if let Some(s) = cpu_seconds() {
        let _ = writeln!(out, "# TYPE {} counter\n{} {s}", names::CPU, names::CPU);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_its_own_memory_and_cpu() {
        let rss = super::resident_bytes().expect("VmRSS");
        assert!(rss > 1 << 20, "{rss}");
        assert!(super::peak_resident_bytes().expect("VmHWM") >= rss);
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            std::hint::black_box(0u64);
        }
        assert!(super::cpu_seconds().expect("cpu") > 0.0);
    }
}
