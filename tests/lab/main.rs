//! The simulation lab end to end, in the simulation build (`cargo sim --test lab`): the simulated
//! world, the lab's command line, the bugs planted in test doubles of the broker that the lab
//! must catch, and the HTML page of a failing run in a browser. The guard that a simulation
//! build carries `--cfg madsim` runs in both builds.

#[cfg(madsim)]
mod cli;
#[cfg(madsim)]
mod html_report;
#[cfg(madsim)]
mod mutation;
#[cfg(madsim)]
mod planted;
#[cfg(madsim)]
mod planted_bugs;
#[cfg(madsim)]
mod planted_store;
#[cfg(madsim)]
mod shrink;
mod sim_guard;
#[cfg(madsim)]
mod templates;
#[cfg(madsim)]
mod traps;
#[cfg(madsim)]
mod world;
