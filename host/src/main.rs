use clap::Parser;

/// Whether standard output was closed when the process started. It must be
/// read before Rust's runtime starts: that opens /dev/null on a closed
/// descriptor 0-2, after which `rcbackup listbackups --json >&-` would
/// "succeed" having written nothing.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[used]
#[unsafe(link_section = ".init_array")]
static CHECK_STDOUT: extern "C" fn() = {
    extern "C" fn check() {
        // SAFETY: fcntl(F_GETFD) only reads the descriptor's flags.
        if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    check
};

fn main() {
    if STDOUT_CLOSED.load(std::sync::atomic::Ordering::SeqCst) {
        rcbackup::output::mark_stdout_closed();
    }
    let cli = rcbackup::cli::Cli::parse();
    std::process::exit(rcbackup::run(cli) as i32);
}
