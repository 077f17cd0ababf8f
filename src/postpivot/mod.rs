//! The first-boot agent (`post-pivot`): configuration discovery and the reconfiguration steps.
