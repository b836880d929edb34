//! The browser suite: what a person sees and clicks, in Debian's Chromium driven through chromedriver
//! (fantoccini), against a fresh `lifeline serve --demo` per scenario. Every page a scenario passes is
//! screenshotted (desktop and 390×844) under `target/e2e-screenshots/<scenario>/`, checked with axe-core (a
//! serious or critical violation fails; moderate ones are listed), for labelled inputs, and at phone width
//! for sideways scrolling and buttons under 44 px.
//!
//! Run it alone with `cargo test --test e2e`; it needs `apt-get install -y chromium chromium-driver oathtool`
//! and `npm ci --prefix tests/e2e/tools` (axe-core), which `.ci/run` installs.

mod addresses;
mod four_eyes;
mod harness;
mod keyboard;
mod manager;
mod passkeys;
mod recovery_story;
mod reset_mfa;
mod tiers;
