//! The face-generator kiosk: one generated face at a time, filling a screen,
//! morphing into the next face by slerp between their latents.
//!
//! A frame is drawn through embedded-graphics into a [`Display`]'s back
//! buffer and then shown whole. Backends: the Linux framebuffer
//! ([`FbDevice`], Linux only), PNG files in a folder ([`PngFrames`]), an
//! in-memory framebuffer for tests and benchmarks ([`MemoryFramebuffer`]),
//! and a desktop window with the `window` feature.
//!
//! A missing or invalid model is not fatal: the kiosk shows an error screen,
//! logs the error and tries to load the model again every
//! [`KioskOptions::retry`], so it recovers once the file is fixed.
//!
//! Once a model is loaded, a frame allocates nothing in the kiosk's own code:
//! latents, the RGB face, the scaling table and the back buffer are
//! allocated when the model loads. tract allocates and frees the tensors of
//! each generator run. The error screen allocates while it is drawn.

mod display;
#[cfg(target_os = "linux")]
mod fbdev;
pub mod framebuffer;
mod keys;
mod options;
pub mod scale;
mod screen;
pub mod slerp;
pub mod timeline;
#[cfg(feature = "window")]
mod window;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use embedded_graphics::prelude::{OriginDimensions, Size};

pub use display::{Display, DisplayError, DisplayEvent, MemoryFramebuffer, PngFrames, RgbCanvas};
#[cfg(target_os = "linux")]
pub use fbdev::FbDevice;
pub use framebuffer::{FramebufferGeometry, FramebufferTarget};
pub use keys::TerminalKeys;
pub use options::{parse_duration, parse_size, DisplaySpec, KioskError, KioskOptions};
pub use screen::{draw_error_screen, FaceRenderer, Layout};
use timeline::{Scene, Timeline};
#[cfg(feature = "window")]
pub use window::WindowDisplay;

use crate::backend::Generator;

/// Requests to a running kiosk from other threads: skips from a key reader,
/// stops from a signal handler. Shared through an `Arc`.
#[derive(Debug, Default)]
pub struct KioskControl {
    skips: AtomicU64,
    stop: AtomicBool,
}

impl KioskControl {
    /// No pending skips, not stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the kiosk to skip to the next face.
    pub fn request_skip(&self) {
        self.skips.fetch_add(1, Ordering::Relaxed);
    }

    /// Asks the kiosk to stop after the current frame.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Returns whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Takes all pending skips and returns how many there were.
    fn take_skips(&self) -> u64 {
        self.skips.swap(0, Ordering::Relaxed)
    }
}

/// The content of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A face or a morph step.
    Face(Scene),
    /// The error screen, because no model is loaded.
    Error,
}

/// Counts from a finished kiosk run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KioskSummary {
    /// Frames presented.
    pub frames: u64,
    /// Frames that showed the error screen.
    pub error_frames: u64,
    /// Failed attempts to load the model.
    pub load_failures: u64,
    /// Successful loads of the model.
    pub loads: u64,
}

/// The model, or the error that stops it from loading.
#[derive(Debug)]
enum ModelState {
    Loaded(Box<FaceRenderer>),
    Failed { error: String, next_attempt: Instant, attempts: u64, drawn_attempts: Option<u64> },
}

/// The kiosk's state between frames.
#[derive(Debug)]
pub struct Kiosk {
    options: KioskOptions,
    screen: Size,
    timeline: Timeline,
    model: ModelState,
    summary: KioskSummary,
}

impl Kiosk {
    /// Creates a kiosk for a `screen`-sized display. The first
    /// [`Kiosk::step`] loads the model.
    ///
    /// # Errors
    ///
    /// [`KioskError::InvalidOption`] for an fps that is not a positive
    /// number.
    pub fn new(options: KioskOptions, screen: Size) -> Result<Self, KioskError> {
        options.validate()?;
        let hold_frames = frames_for(options.hold, options.fps);
        let morph_frames = frames_for(options.morph, options.fps);
        Ok(Kiosk {
            timeline: Timeline::new(0, hold_frames, morph_frames),
            model: ModelState::Failed {
                error: String::new(),
                next_attempt: Instant::now(),
                attempts: 0,
                drawn_attempts: None,
            },
            options,
            screen,
            summary: KioskSummary::default(),
        })
    }

    /// Returns the counts so far.
    pub fn summary(&self) -> &KioskSummary {
        &self.summary
    }

    /// Returns the face renderer once a model is loaded.
    pub fn renderer(&self) -> Option<&FaceRenderer> {
        match &self.model {
            ModelState::Loaded(renderer) => Some(renderer),
            ModelState::Failed { .. } => None,
        }
    }

    /// Draws and presents one frame, loading the model first when it is not
    /// loaded and a retry is due.
    ///
    /// # Errors
    ///
    /// A [`DisplayError`] when the frame cannot be shown. Model errors are
    /// logged and shown on the error screen instead.
    pub fn step<D: Display>(&mut self, display: &mut D, control: &KioskControl) -> Result<Frame, KioskError> {
        self.load_if_due();

        let skips = control.take_skips();
        let frame = match &mut self.model {
            ModelState::Loaded(renderer) => {
                for _ in 0..skips {
                    self.timeline.skip();
                }
                let scene = self.timeline.scene();
                match renderer.draw(scene, display.target()) {
                    Ok(()) => {
                        self.timeline.advance();
                        Frame::Face(scene)
                    }
                    Err(err) => {
                        log::error!("the generator failed, so the kiosk shows the error screen: {err}");
                        self.model = self.failed(err.to_string(), 1);
                        self.draw_error_screen(display);
                        Frame::Error
                    }
                }
            }
            ModelState::Failed { .. } => {
                self.draw_error_screen(display);
                Frame::Error
            }
        };

        display.present()?;
        self.summary.frames += 1;
        if frame == Frame::Error {
            self.summary.error_frames += 1;
        }
        Ok(frame)
    }

    /// Runs frames until `--frames` are shown, a stop is requested or the
    /// display reports Quit, at `fps` when [`KioskOptions::realtime`] is set
    /// and as fast as possible otherwise. Error screens are always paced at
    /// `fps`, so a headless run waits for its retries.
    ///
    /// # Errors
    ///
    /// A [`DisplayError`] when a frame cannot be shown.
    pub fn run<D: Display>(&mut self, display: &mut D, control: &KioskControl) -> Result<KioskSummary, KioskError> {
        let period = Duration::from_secs_f64(1.0 / self.options.fps);
        log::info!(
            "kiosk started: model {}, seed {}, {}x{} screen, {} fps, hold {:?}, morph {:?}",
            self.options.model.display(),
            self.options.seed,
            self.screen.width,
            self.screen.height,
            self.options.fps,
            self.options.hold,
            self.options.morph
        );

        let mut deadline = Instant::now();
        while !self.finished(control) {
            while let Some(event) = display.poll_event() {
                match event {
                    DisplayEvent::Skip => control.request_skip(),
                    DisplayEvent::Quit => control.request_stop(),
                }
            }
            if control.stop_requested() {
                break;
            }

            let frame = self.step(display, control)?;
            if self.options.realtime || frame == Frame::Error {
                deadline = wait_until_next_frame(deadline, period);
            }
        }

        log::info!(
            "kiosk stopped after {} frames ({} error screens, {} failed model loads)",
            self.summary.frames,
            self.summary.error_frames,
            self.summary.load_failures
        );
        Ok(self.summary.clone())
    }

    fn finished(&self, control: &KioskControl) -> bool {
        let all_frames_shown = self.options.frames.is_some_and(|frames| self.summary.frames >= frames);
        all_frames_shown || control.stop_requested()
    }

    /// Loads the model when none is loaded and the retry time has come.
    fn load_if_due(&mut self) {
        let ModelState::Failed { error, next_attempt, attempts, .. } = &self.model else {
            return;
        };
        if Instant::now() < *next_attempt {
            return;
        }

        let (previous_error, attempts) = (error.clone(), *attempts);
        match Generator::load(&self.options.model, &self.options.load) {
            Ok(generator) => {
                if attempts > 0 {
                    log::info!("loaded {} after {attempts} failed attempts", self.options.model.display());
                }
                let renderer = FaceRenderer::new(generator, self.options.seed, self.screen);
                self.model = ModelState::Loaded(Box::new(renderer));
                self.summary.loads += 1;
            }
            Err(err) => {
                let message = err.to_string();
                self.summary.load_failures += 1;
                // Repeats of the same error are logged once, then counted.
                if message == previous_error {
                    log::debug!("model still fails to load (attempt {}): {message}", attempts + 1);
                } else {
                    log::error!("cannot load the model, retrying every {:?}: {message}", self.options.retry);
                }
                self.model = self.failed(message, attempts + 1);
            }
        }
    }

    fn failed(&self, error: String, attempts: u64) -> ModelState {
        ModelState::Failed { error, next_attempt: Instant::now() + self.options.retry, attempts, drawn_attempts: None }
    }

    /// Draws the error screen unless the back buffer already shows it for
    /// the current attempt count.
    fn draw_error_screen<D: Display>(&mut self, display: &mut D) {
        let ModelState::Failed { error, attempts, drawn_attempts, .. } = &mut self.model else {
            return;
        };
        if *drawn_attempts == Some(*attempts) {
            return;
        }
        let retry = self.options.retry.as_secs_f64();
        draw_error_screen(display.target(), error, retry, *attempts);
        *drawn_attempts = Some(*attempts);
    }
}

/// Frames for a duration at `fps`, rounded to the nearest frame.
fn frames_for(duration: Duration, fps: f64) -> u32 {
    (duration.as_secs_f64() * fps).round().min(f64::from(u32::MAX)) as u32
}

/// Sleeps until `deadline + period` and returns that time, or returns now
/// when the frame is more than a period late, so a slow frame does not make
/// the next ones rush.
fn wait_until_next_frame(deadline: Instant, period: Duration) -> Instant {
    let next = deadline + period;
    let now = Instant::now();
    if next > now {
        std::thread::sleep(next - now);
        next
    } else if now - next > period {
        now
    } else {
        next
    }
}

/// Opens the display `spec` names and runs the kiosk on it.
///
/// `size` sets the frame size of the PNG and window displays; a framebuffer
/// uses the device's own resolution.
///
/// # Errors
///
/// [`KioskError::Display`] when the display cannot be opened or a frame
/// cannot be shown, and [`KioskError::InvalidOption`] for invalid options.
pub fn run_on(
    spec: &DisplaySpec,
    size: Size,
    options: KioskOptions,
    control: &KioskControl,
) -> Result<KioskSummary, KioskError> {
    options.validate()?;
    match spec {
        DisplaySpec::Framebuffer(path) => run_on_framebuffer(path, options, control),
        DisplaySpec::Png(dir) => {
            let mut display = PngFrames::new(dir, size)?;
            run_display(&mut display, options, control)
        }
        DisplaySpec::Window => run_on_window(size, options, control),
    }
}

fn run_display<D: Display>(
    display: &mut D,
    options: KioskOptions,
    control: &KioskControl,
) -> Result<KioskSummary, KioskError> {
    let size = display.target().size();
    Kiosk::new(options, size)?.run(display, control)
}

#[cfg(target_os = "linux")]
fn run_on_framebuffer(
    path: &std::path::Path,
    options: KioskOptions,
    control: &KioskControl,
) -> Result<KioskSummary, KioskError> {
    let mut display = FbDevice::open(path)?;
    run_display(&mut display, options, control)
}

#[cfg(not(target_os = "linux"))]
fn run_on_framebuffer(
    path: &std::path::Path,
    _options: KioskOptions,
    _control: &KioskControl,
) -> Result<KioskSummary, KioskError> {
    Err(DisplayError::Unavailable(format!(
        "cannot open {}: the framebuffer display needs Linux; use --display png:DIR or window",
        path.display()
    ))
    .into())
}

#[cfg(feature = "window")]
fn run_on_window(size: Size, options: KioskOptions, control: &KioskControl) -> Result<KioskSummary, KioskError> {
    let mut display = WindowDisplay::new(size);
    run_display(&mut display, options, control)
}

#[cfg(not(feature = "window"))]
fn run_on_window(_size: Size, _options: KioskOptions, _control: &KioskControl) -> Result<KioskSummary, KioskError> {
    Err(DisplayError::Unavailable(
        "this dcgan-edge was built without the window display: rebuild with \
         `cargo build --release -p dcgan-trainer -p dcgan-runtime --features dcgan-runtime/window` \
         (needs SDL2, Debian package libsdl2-dev)"
            .to_string(),
    )
    .into())
}

/// Returns the default `--display`, the first framebuffer.
pub fn default_display() -> DisplaySpec {
    DisplaySpec::Framebuffer(PathBuf::from("/dev/fb0"))
}
