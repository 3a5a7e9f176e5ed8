//! The kiosk's options, their parsing and its errors.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use embedded_graphics::prelude::Size;

use crate::backend::LoadOptions;

use super::display::DisplayError;

/// A failure that stops the kiosk. Model errors are not among them: the
/// kiosk shows those and retries.
#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    /// An option has a value the kiosk cannot use.
    #[error("invalid {name} {value:?}: {reason}")]
    InvalidOption {
        /// The option, for example `--fps`.
        name: &'static str,
        /// The rejected value.
        value: String,
        /// The problem and the accepted values.
        reason: String,
    },
    /// The display failed.
    #[error(transparent)]
    Display(#[from] DisplayError),
}

/// Settings of a kiosk run.
#[derive(Debug, Clone, PartialEq)]
pub struct KioskOptions {
    /// Generator ONNX file or weight file; loaded, and reloaded after
    /// failures, by the kiosk.
    pub model: PathBuf,
    /// Backend and memory limit for loading `model`.
    pub load: LoadOptions,
    /// Seed of the latents: face `k` of a seed is always the same face.
    pub seed: u64,
    /// How long each face stays still.
    pub hold: Duration,
    /// How long the morph to the next face takes.
    pub morph: Duration,
    /// Frames per second; also sets the frame counts of `hold` and `morph`.
    pub fps: f64,
    /// Stop after this many frames; `None` runs until stopped.
    pub frames: Option<u64>,
    /// Time between attempts to load a model that failed to load.
    pub retry: Duration,
    /// Pace frames at `fps` in real time; headless runs set `false` to render
    /// as fast as possible.
    pub realtime: bool,
}

impl KioskOptions {
    /// Returns the options of `dcgan-edge kiosk` without flags, for `model`.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        KioskOptions {
            model: model.into(),
            load: LoadOptions::default(),
            seed: 0,
            hold: Duration::from_secs(5),
            morph: Duration::from_millis(1500),
            fps: 30.0,
            frames: None,
            retry: Duration::from_secs(5),
            realtime: true,
        }
    }

    /// Checks the values the kiosk cannot use.
    ///
    /// # Errors
    ///
    /// [`KioskError::InvalidOption`] for an fps that is not a finite number
    /// between 0.01 and 1000.
    pub fn validate(&self) -> Result<(), KioskError> {
        if !(self.fps.is_finite() && (0.01..=1000.0).contains(&self.fps)) {
            return Err(KioskError::InvalidOption {
                name: "--fps",
                value: self.fps.to_string(),
                reason: "give a number of frames per second from 0.01 to 1000".to_string(),
            });
        }
        Ok(())
    }
}

/// Parses a duration such as `5s`, `1.5s`, `500ms` or `2` (seconds).
///
/// # Errors
///
/// A message naming the value for anything else, including negative values.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let (number, scale) = if let Some(millis) = trimmed.strip_suffix("ms") {
        (millis, 1e-3)
    } else if let Some(seconds) = trimmed.strip_suffix('s') {
        (seconds, 1.0)
    } else {
        (trimmed, 1.0)
    };
    let invalid = || format!("invalid duration {text:?}: write seconds or milliseconds such as 5s, 1.5s or 500ms");
    let value: f64 = number.trim().parse().map_err(|_| invalid())?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| invalid())
}

/// Parses a frame size `WIDTHxHEIGHT` such as `800x480`.
///
/// # Errors
///
/// A message naming the value unless both sides are whole numbers from 1 to
/// 16384.
pub fn parse_size(text: &str) -> Result<Size, String> {
    let invalid = || format!("invalid size {text:?}: write WIDTHxHEIGHT in pixels, such as 800x480");
    let (width, height) = text.trim().split_once(['x', 'X']).ok_or_else(invalid)?;
    let side =
        |value: &str| value.trim().parse::<u32>().ok().filter(|side| (1..=16384).contains(side)).ok_or_else(invalid);
    Ok(Size::new(side(width)?, side(height)?))
}

/// The display the kiosk draws on, as `--display` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplaySpec {
    /// `fb:/dev/fbN`: a Linux framebuffer device.
    Framebuffer(PathBuf),
    /// `png:DIR`: PNG files in a folder.
    Png(PathBuf),
    /// `window`: a desktop window (needs the `window` feature).
    Window,
}

impl FromStr for DisplaySpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("invalid display {text:?}: use fb:/dev/fb0, png:DIR or window");
        if text == "window" {
            return Ok(DisplaySpec::Window);
        }
        let (kind, path) = text.split_once(':').ok_or_else(invalid)?;
        if path.is_empty() {
            return Err(invalid());
        }
        match kind {
            "fb" => Ok(DisplaySpec::Framebuffer(PathBuf::from(path))),
            "png" => Ok(DisplaySpec::Png(PathBuf::from(path))),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_rejected() {
        for text in ["", "s", "-1s", "fast", "1h", "NaNs", "infs"] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("800x480"), Ok(Size::new(800, 480)));
        assert_eq!(parse_size("64X64"), Ok(Size::new(64, 64)));
        for text in ["800", "0x10", "10x", "ax4", "99999x1"] {
            assert!(parse_size(text).is_err(), "{text}");
        }
    }

    #[test]
    fn display_specs_parse() {
        assert_eq!("fb:/dev/fb1".parse(), Ok(DisplaySpec::Framebuffer("/dev/fb1".into())));
        assert_eq!("png:out/frames".parse(), Ok(DisplaySpec::Png("out/frames".into())));
        assert_eq!("window".parse(), Ok(DisplaySpec::Window));
        for text in ["", "fb:", "hdmi:0", "/dev/fb0"] {
            let err = text.parse::<DisplaySpec>().unwrap_err();
            assert!(err.contains("png:DIR"), "{err}");
        }
    }

    #[test]
    fn fps_must_be_positive() {
        let mut options = KioskOptions::new("g.onnx");
        assert!(options.validate().is_ok());
        for fps in [0.0, -1.0, f64::NAN, f64::INFINITY, 5000.0] {
            options.fps = fps;
            assert!(options.validate().is_err(), "{fps}");
        }
    }
}
