fn main() {
    std::process::exit(mqtt_lab::cli::main());
}
