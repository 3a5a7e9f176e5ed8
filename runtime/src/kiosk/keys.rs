//! Key presses on the terminal: Enter or space skips to the next face, `q`
//! stops the kiosk.
//!
//! A line-buffered terminal delivers a key only after Enter, so on a
//! terminal the reader switches it to non-canonical mode without echo through
//! termios (the `libc` crate) for as long as the returned guard lives. Ctrl-C
//! keeps working because signals stay enabled. When standard input is not a
//! terminal (a pipe, `/dev/null`, a service), it is read as it is.

use std::io::Read;
use std::sync::Arc;

use super::KioskControl;

/// Restores the terminal's settings when dropped.
#[derive(Debug)]
pub struct TerminalKeys {
    #[cfg(unix)]
    original: Option<libc::termios>,
}

impl TerminalKeys {
    /// Starts a thread that reads standard input and forwards Enter and
    /// space as skips and `q` as a stop request to `control`.
    ///
    /// The thread ends at the end of input and otherwise stays blocked in
    /// `read` until the process exits.
    pub fn start(control: Arc<KioskControl>) -> Self {
        let keys = TerminalKeys {
            #[cfg(unix)]
            original: raw_mode(),
        };
        let spawned = std::thread::Builder::new().name("kiosk-keys".to_string()).spawn(move || read_keys(&control));
        if let Err(err) = spawned {
            log::warn!("failed to start the key reader thread, so keys will not skip faces: {err}");
        }
        keys
    }
}

fn read_keys(control: &KioskControl) {
    let mut stdin = std::io::stdin().lock();
    let mut byte = [0u8; 1];
    loop {
        match stdin.read(&mut byte) {
            Ok(0) => {
                log::debug!("standard input ended: keys no longer skip faces");
                return;
            }
            Ok(_) => match byte[0] {
                b'\n' | b'\r' | b' ' => control.request_skip(),
                b'q' | b'Q' => control.request_stop(),
                _ => {}
            },
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                log::warn!("failed to read standard input, so keys no longer skip faces: {err}");
                return;
            }
        }
    }
}

/// Switches a terminal on standard input to non-canonical mode without echo
/// and returns its previous settings; `None` when standard input is not a
/// terminal or its settings cannot be changed.
#[cfg(unix)]
fn raw_mode() -> Option<libc::termios> {
    // SAFETY: isatty, tcgetattr and tcsetattr only read the descriptor's state
    // and the termios structure passed by reference, which lives on the
    // stack for the duration of each call. An all-zero termios is a valid
    // value of this plain C structure.
    unsafe {
        if libc::isatty(libc::STDIN_FILENO) != 1 {
            return None;
        }
        let mut original: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut original) != 0 {
            log::warn!(
                "failed to read the terminal settings, so space needs Enter: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        let mut single_key = original;
        single_key.c_lflag &= !(libc::ICANON | libc::ECHO);
        single_key.c_cc[libc::VMIN] = 1;
        single_key.c_cc[libc::VTIME] = 0;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &single_key) != 0 {
            log::warn!(
                "failed to switch the terminal to single-key input, so space needs Enter: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(original)
    }
}

#[cfg(unix)]
impl Drop for TerminalKeys {
    fn drop(&mut self) {
        if let Some(original) = self.original.take() {
            // SAFETY: restores settings read by tcgetattr from the same
            // descriptor; the structure lives on the stack during the call.
            let restored = unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &original) };
            if restored != 0 {
                log::warn!(
                    "failed to restore the terminal settings (run `stty sane`): {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}
