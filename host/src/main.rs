use clap::Parser;

fn main() {
    let cli = rcbackup::cli::Cli::parse();
    std::process::exit(rcbackup::run(cli) as i32);
}
