//! Guards the simulation build: `cargo sim` sets MQTT_LAB_SIM=1 and `--cfg madsim`. A stray
//! RUSTFLAGS environment variable replaces cargo's `build.rustflags`, which would build the
//! simulation tests without the cfg and "pass" with none of them run. This test turns that into
//! a failure.

#[test]
#[allow(clippy::assertions_on_constants)]
fn simulation_builds_carry_the_madsim_cfg() {
    let sim_requested =
        option_env!("MQTT_LAB_SIM").is_some() || std::env::var_os("MQTT_LAB_SIM").is_some();
    if sim_requested {
        assert!(
            cfg!(madsim),
            "MQTT_LAB_SIM is set but this test was built without `--cfg madsim`: \
             is RUSTFLAGS set in the environment? It overrides the `cargo sim` alias; unset it."
        );
    } else {
        assert!(
            !cfg!(madsim),
            "a `--cfg madsim` build must go through `cargo sim`, which sets MQTT_LAB_SIM"
        );
    }
}
