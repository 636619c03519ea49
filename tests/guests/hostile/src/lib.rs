//! One guest, many misbehaviours: the config's `mode` picks which. Every
//! role misbehaves the same way, so one module serves every test.

use rcbackup_guest::{
    export_policy, Approval, Backup, Decision, Event, Hooks, Naming, NamingContext,
    RestoreApproval, Retention,
};
use serde::Deserialize;

/// Direct calls into WASI (wit/probes.wit), for what Rust's std does not
/// reach or reaches only one way.
mod wasi {
    wit_bindgen::generate!({
        path: "wit",
        world: "probes",
        generate_all,
    });
}
use wasi::wasi::clocks::{monotonic_clock, wall_clock};
use wasi::wasi::random::{insecure, insecure_seed, random};
use wasi::wasi::sockets::{
    instance_network, ip_name_lookup, network, tcp_create_socket, udp_create_socket,
};

#[derive(Deserialize)]
struct Config {
    mode: String,
    /// `alloc`: how many MiB to allocate (and fill) before answering.
    #[serde(default)]
    mib: usize,
    /// `busy`: how many rounds of work to do before answering.
    #[serde(default)]
    rounds: u64,
}

/// Does the mode's harm; returns only for modes that shape the answer.
fn misbehave() -> String {
    let config = rcbackup_guest::config::<Config>().unwrap_or(Config {
        mode: String::new(),
        mib: 0,
        rounds: 0,
    });
    let mode = config.mode;
    match mode.as_str() {
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "log" => loop {
            rcbackup_guest::log::info("flooding the log with this line, again and again");
        },
        "stdout" => loop {
            println!("flooding stdout with this line, again and again");
        },
        "trap" => panic!("the guest panics on purpose"),
        // A well-behaved guest that needs a known amount of memory, or of
        // time: it answers `alloc` or `busy` when the limits let it finish.
        "alloc" => {
            let block = vec![1u8; config.mib << 20];
            std::hint::black_box(&block);
            mode
        }
        "busy" => {
            let mut n: u64 = 0;
            for i in 0..config.rounds {
                n = std::hint::black_box(n.wrapping_add(i));
            }
            std::hint::black_box(n);
            mode
        }
        // Waits inside WASI: std's sleep (monotonic-clock subscribe + block),
        // and a hand-made wasi:io/poll on a one-hour timer.
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            mode
        }
        "poll-sleep" => {
            let timer = monotonic_clock::subscribe_duration(3600 * 1_000_000_000);
            wasi::wasi::io::poll::poll(&[&timer]);
            mode
        }
        // Everything a guest can read that could differ between two runs
        // of the same call: the clocks (WASI and std) and every random source.
        "clock-random" => {
            let wall = wall_clock::now();
            let std_wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mono = monotonic_clock::now();
            let started = std::time::Instant::now();
            let hex = |b: Vec<u8>| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let (s1, s2) = insecure_seed::insecure_seed();
            // std's HashMap seeds its hasher from the random source too.
            let map: std::collections::HashMap<u32, ()> = (0..8).map(|i| (i, ())).collect();
            let order: String = map.keys().map(|k| k.to_string()).collect();
            format!(
                "w{}.{}-s{std_wall}-m{mono}-e{}-r{}-i{}-k{:x}{:x}-h{order}",
                wall.seconds,
                wall.nanoseconds,
                started.elapsed().as_nanos(),
                hex(random::get_random_bytes(6)),
                hex(insecure::get_insecure_random_bytes(6)),
                s1 & 0xffff,
                s2 & 0xffff,
            )
        }
        // Tries every door a guest might: files, environment, arguments,
        // stdin, TCP, UDP, DNS; reports how each one answered.
        "wasi-probe" => {
            let env = std::env::vars().count();
            let args = std::env::args().count();
            let preopens = wasi::wasi::filesystem::preopens::get_directories().len();
            let fs = match std::fs::read_dir("/") {
                Ok(_) => "open".to_string(),
                Err(e) => format!("{:?}", e.kind()),
            };
            let mut buf = [0u8; 16];
            let stdin = match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
                Ok(n) => format!("{n}"),
                Err(e) => format!("{:?}", e.kind()),
            };
            let code = |e: network::ErrorCode| e.name().to_string();
            let net = instance_network::instance_network();
            let tcp = match tcp_create_socket::create_tcp_socket(network::IpAddressFamily::Ipv4) {
                Ok(sock) => {
                    let addr = network::IpSocketAddress::Ipv4(network::Ipv4SocketAddress {
                        port: 5432,
                        address: (127, 0, 0, 1),
                    });
                    match sock.start_connect(&net, addr) {
                        Ok(()) => "connecting".to_string(),
                        Err(e) => format!("connect-{}", code(e)),
                    }
                }
                Err(e) => code(e),
            };
            let udp = match udp_create_socket::create_udp_socket(network::IpAddressFamily::Ipv4) {
                Ok(_) => "created".to_string(),
                Err(e) => code(e),
            };
            let dns = match ip_name_lookup::resolve_addresses(&net, "localhost") {
                Ok(_) => "resolving".to_string(),
                Err(e) => code(e),
            };
            format!("env{env}-args{args}-pre{preopens}-fs.{fs}-in.{stdin}-tcp.{tcp}-udp.{udp}-dns.{dns}")
        }
        "read-env" => {
            let vars: Vec<(String, String)> = std::env::vars().collect();
            let files = std::fs::read_dir("/").map(|d| d.count()).unwrap_or(0);
            format!("env{}-files{}", vars.len(), files)
        }
        // Text that would pass for rcbackup's own lines if shown raw: a
        // newline, an ANSI escape and a right-to-left override.
        "forge" => {
            rcbackup_guest::log::warn(FORGED);
            println!("{FORGED}");
            eprintln!("{FORGED}");
            FORGED.to_string()
        }
        // Under every budget, but many tiny lines: 30,000 log calls and
        // 30,000 lines of stdout, 60,000 bytes each.
        "chatty" => {
            for _ in 0..30_000 {
                rcbackup_guest::log::info("x");
            }
            for _ in 0..30_000 {
                println!("y");
            }
            mode
        }
        "exit0" => std::process::exit(0),
        "exit3" => std::process::exit(3),
        other => other.to_string(),
    }
}

const FORGED: &str = "innocent\nERROR rcbackup: forged by the guest\u{1b}[2J\u{202e}gpj.exe";

struct Hostile;

impl Retention for Hostile {
    fn retention(series: Vec<Backup>, _now: i64) -> Result<Vec<Decision>, String> {
        let mode = misbehave();
        let decide = |name: String, keep: bool| Decision {
            name,
            keep,
            reason: format!("hostile mode {mode}"),
        };
        Ok(match mode.as_str() {
            "unknown" => vec![decide("not-a-backup.sqlite3".into(), false)],
            "delete-all" => series.into_iter().map(|b| decide(b.name, false)).collect(),
            // Says every backup it is shown (name, database, tenant), then
            // deletes all but the newest: what it can touch is what it is
            // shown.
            "show-delete-old" => {
                let newest = series.iter().map(|b| b.created).max().unwrap_or_default();
                let mut kept = false;
                series
                    .into_iter()
                    .map(|b| {
                        rcbackup_guest::log::info(&format!(
                            "shown {} database={} tenant={}",
                            b.name,
                            b.database,
                            b.tenant.as_deref().unwrap_or("-")
                        ));
                        // One only, though two may share the newest second.
                        let keep = b.created == newest && !kept;
                        kept |= keep;
                        decide(b.name, keep)
                    })
                    .collect()
            }
            // Deletes only the newest, keeps the rest.
            "delete-newest" => {
                let newest = series.iter().map(|b| b.created).max().unwrap_or_default();
                series
                    .into_iter()
                    .map(|b| {
                        let keep = b.created != newest;
                        decide(b.name, keep)
                    })
                    .collect()
            }
            // Keeps every backup, then decides on the oldest a second time.
            "twice" => {
                let oldest = series
                    .iter()
                    .min_by_key(|b| b.created)
                    .map(|b| b.name.clone())
                    .unwrap_or_default();
                let mut all: Vec<Decision> =
                    series.into_iter().map(|b| decide(b.name, true)).collect();
                all.push(decide(oldest, false));
                all
            }
            "missing" => series
                .into_iter()
                .skip(1)
                .map(|b| decide(b.name, true))
                .collect(),
            "huge-reason" => series
                .into_iter()
                .map(|b| Decision {
                    name: b.name,
                    keep: true,
                    reason: "x".repeat(8 << 20),
                })
                .collect(),
            _ => return Err(format!("unknown mode {mode}")),
        })
    }
}

impl Naming for Hostile {
    fn naming(_ctx: NamingContext) -> Result<String, String> {
        Ok(misbehave())
    }
}

impl RestoreApproval for Hostile {
    fn approve_restore(_req: rcbackup_guest::RestoreRequest) -> Approval {
        Approval::Deny(misbehave())
    }
}

impl Hooks for Hostile {
    fn on_event(_event: Event) -> Result<(), String> {
        Err(misbehave())
    }
}

export_policy!(Hostile: retention, naming, restore_approval, hooks);
