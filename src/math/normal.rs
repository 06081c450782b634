//! Standard normal density, distribution and quantile.
//!
//! PLACEHOLDER (statrs-backed) until the Cody/AS241 implementation lands.

/// Standard normal density `exp(-x^2/2)/sqrt(2 pi)`.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() * 0.398_942_280_401_432_7
}

/// Standard normal cumulative distribution.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// Inverse of [`norm_cdf`].
pub fn inverse_norm_cdf(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}

/// Coefficients of Cody's ANORM (ACM TOMS 715), shared with the batch kernel.
pub(crate) mod anorm {
    /// Boundary of the first approximation.
    pub(crate) const THRSH: f64 = 0.66291;
    /// Boundary of the asymptotic approximation, sqrt(32).
    pub(crate) const ROOT32: f64 = 5.656_854_248;
    pub(crate) const A: [f64; 5] = [
        2.235_252_035_460_683_928_7,
        1.610_282_310_685_558_788_1e2,
        1.067_689_485_460_370_958_2e3,
        1.815_498_125_334_356_124_9e4,
        6.568_233_791_820_744_911_3e-2,
    ];
    pub(crate) const B: [f64; 4] = [
        4.720_258_190_468_824_187_0e1,
        9.760_985_517_377_766_932_2e2,
        1.026_093_220_861_897_820_5e4,
        4.550_778_933_502_672_995_6e4,
    ];
    pub(crate) const C: [f64; 9] = [
        3.989_415_120_881_346_676_4e-1,
        8.883_149_794_388_375_941_2,
        9.350_665_613_217_785_597_9e1,
        5.972_702_763_948_002_622_6e2,
        2.494_537_585_290_372_671_1e3,
        6.848_190_450_536_282_332_6e3,
        1.160_265_143_764_735_012_4e4,
        9.842_714_838_383_978_021_8e3,
        1.076_557_677_372_019_231_7e-8,
    ];
    pub(crate) const D: [f64; 8] = [
        2.226_668_804_432_811_569_1e1,
        2.353_879_017_826_249_986_1e2,
        1.519_377_599_407_554_805_0e3,
        6.485_558_298_266_760_755_0e3,
        1.861_557_164_088_509_809_1e4,
        3.490_095_272_114_597_726_6e4,
        3.891_200_328_609_327_141_1e4,
        1.968_542_967_685_999_072_7e4,
    ];
    pub(crate) const P: [f64; 6] = [
        2.158_985_340_579_569_9e-1,
        1.274_011_611_602_473_639e-1,
        2.223_527_787_064_980_7e-2,
        1.421_619_193_227_893_466e-3,
        2.911_287_495_116_879_2e-5,
        2.307_344_176_494_017_303e-2,
    ];
    pub(crate) const Q: [f64; 5] = [
        1.284_260_096_144_911_21,
        4.682_382_124_808_651_18e-1,
        6.598_813_786_892_855_15e-2,
        3.782_396_332_027_582_44e-3,
        7.297_515_550_839_662_05e-5,
    ];
}
