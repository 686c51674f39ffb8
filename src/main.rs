fn main() {
    std::process::exit(blackbox::cli::main());
}
