//! Call-progress tones: the ringback a caller hears while a `<Dial>` rings, per country
//! (`<Dial ringTone>`), after ITU-T E.180's table: the tone's frequencies and its on/off
//! cadence. One cadence cycle is built; players loop it.

use crate::FrameSet;

/// A ringback: frequencies summed while on, and the cadence as (on, off) pairs in ms.
struct Ringback {
    hz: &'static [f64],
    cadence: &'static [(u32, u32)],
}

const NORTH_AMERICA: Ringback = Ringback {
    hz: &[440.0, 480.0],
    cadence: &[(2000, 4000)],
};
const DOUBLE_RING: Ringback = Ringback {
    hz: &[400.0, 450.0],
    cadence: &[(400, 200), (400, 2000)],
};
const EUROPE: Ringback = Ringback {
    hz: &[425.0],
    cadence: &[(1000, 4000)],
};

/// The ringback of `country` (Twilio's `ringTone` codes); North America's for any other.
fn ringback(country: &str) -> Ringback {
    match country {
        "uk" | "au" | "nz" | "in" | "za" | "sg" | "my" => DOUBLE_RING,
        "fr" => Ringback {
            hz: &[440.0],
            cadence: &[(1500, 3500)],
        },
        "es" => Ringback {
            hz: &[425.0],
            cadence: &[(1500, 3000)],
        },
        "ru" | "bg" => Ringback {
            hz: &[425.0],
            cadence: &[(800, 3200)],
        },
        "jp" => Ringback {
            hz: &[400.0],
            cadence: &[(1000, 2000)],
        },
        "cn" => Ringback {
            hz: &[450.0],
            cadence: &[(1000, 4000)],
        },
        "tw" => Ringback {
            hz: &[440.0, 480.0],
            cadence: &[(1000, 2000)],
        },
        "at" | "be" | "br" | "ch" | "cl" | "cz" | "de" | "dk" | "ee" | "fi" | "gr" | "hu"
        | "il" | "it" | "lt" | "mx" | "nl" | "no" | "ph" | "pl" | "pt" | "se" | "th" | "ve" => {
            EUROPE
        }
        _ => NORTH_AMERICA,
    }
}

/// Peak of each tone's sine: two summed stay well inside 16 bits (about −13 dBFS each).
const AMPLITUDE: f64 = 7000.0;

/// `ms` of a sine at `hz` with peak `peak`, 8 kHz PCM: the beep, `<Say>`'s stand-in tone.
pub fn sine(hz: f64, peak: f64, ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|n| (peak * (std::f64::consts::TAU * hz * (n as f64 / 8000.0)).sin()) as i16)
        .collect()
}

/// One cadence cycle of `country`'s ringback, 8 kHz μ-law (loop it while ringing).
pub fn ringback_cycle(country: &str) -> FrameSet {
    let r = ringback(country);
    let mut pcm = Vec::new();
    for &(on, off) in r.cadence {
        let start = pcm.len();
        for n in 0..on as usize * 8 {
            let t = (start + n) as f64 / 8000.0;
            let v: f64 =
                r.hz.iter()
                    .map(|hz| (2.0 * std::f64::consts::PI * hz * t).sin())
                    .sum();
            pcm.push((v * AMPLITUDE) as i16);
        }
        pcm.resize(pcm.len() + off as usize * 8, 0);
    }
    FrameSet::from_pcm(&pcm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mulaw;

    /// Energy of each 100 ms of the cycle: on or off.
    fn on_off(f: &FrameSet) -> Vec<bool> {
        f.mulaw()
            .chunks(800)
            .map(|c| c.iter().map(|&b| i32::from(mulaw::decode(b)).abs()).max() > Some(1000))
            .collect()
    }

    #[test]
    fn us_rings_two_seconds_in_six() {
        let f = ringback_cycle("us");
        assert_eq!(f.duration().as_millis(), 6000);
        let on = on_off(&f);
        assert!(on[..20].iter().all(|&b| b) && on[20..].iter().all(|&b| !b));
    }

    #[test]
    fn uk_rings_twice_per_cycle() {
        let on = on_off(&ringback_cycle("uk"));
        assert_eq!(on.len(), 30);
        assert!(on[0..4].iter().all(|&b| b));
        assert!(on[4..6].iter().all(|&b| !b));
        assert!(on[6..10].iter().all(|&b| b));
        assert!(on[10..].iter().all(|&b| !b));
    }

    #[test]
    fn european_tone_is_425_hz() {
        let f = ringback_cycle("de");
        // Zero crossings over the first second: two per cycle of 425 Hz.
        let pcm: Vec<i16> = f.mulaw()[..8000]
            .iter()
            .map(|&b| mulaw::decode(b))
            .collect();
        let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!((845..=855).contains(&crossings), "{crossings}");
    }
}
