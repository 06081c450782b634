//! Option sensitivities.
