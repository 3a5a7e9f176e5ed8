//! A desktop window through embedded-graphics-simulator (SDL2), for
//! developing the kiosk without a framebuffer.

use std::collections::VecDeque;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::Size;
use embedded_graphics_simulator::sdl2::Keycode;
use embedded_graphics_simulator::{OutputSettingsBuilder, SimulatorDisplay, SimulatorEvent, Window};

use super::display::{Display, DisplayError, DisplayEvent};

/// A window showing each presented frame; Enter or space skips to the next
/// face, `q`, Escape or closing the window stops the kiosk.
pub struct WindowDisplay {
    display: SimulatorDisplay<Rgb888>,
    window: Window,
    opened: bool,
    events: VecDeque<DisplayEvent>,
}

impl std::fmt::Debug for WindowDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowDisplay").field("opened", &self.opened).finish_non_exhaustive()
    }
}

impl WindowDisplay {
    /// Creates a window of `size` pixels, which opens with the first frame.
    pub fn new(size: Size) -> Self {
        let settings = OutputSettingsBuilder::new().scale(1).build();
        WindowDisplay {
            display: SimulatorDisplay::new(size),
            window: Window::new("dcgan-edge kiosk", &settings),
            opened: false,
            events: VecDeque::new(),
        }
    }
}

impl Display for WindowDisplay {
    type Target = SimulatorDisplay<Rgb888>;

    fn target(&mut self) -> &mut Self::Target {
        &mut self.display
    }

    fn present(&mut self) -> Result<(), DisplayError> {
        self.window.update(&self.display);
        self.opened = true;
        Ok(())
    }

    fn poll_event(&mut self) -> Option<DisplayEvent> {
        // The simulator creates its SDL window in the first update, and
        // reading events before that would panic.
        if self.opened && self.events.is_empty() {
            for event in self.window.events() {
                match event {
                    SimulatorEvent::Quit => self.events.push_back(DisplayEvent::Quit),
                    SimulatorEvent::KeyDown { keycode, repeat: false, .. } => match keycode {
                        Keycode::Return | Keycode::Space => self.events.push_back(DisplayEvent::Skip),
                        Keycode::Q | Keycode::Escape => self.events.push_back(DisplayEvent::Quit),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        self.events.pop_front()
    }
}
