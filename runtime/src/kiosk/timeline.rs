//! Which face, or which step of which morph, each frame shows.

/// What one frame shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
    /// Face `face` of the seed, still.
    Hold {
        /// Face index.
        face: u64,
    },
    /// Step `step` of `steps` of the morph from face `from` to face `from + 1`.
    Morph {
        /// Face the morph starts from.
        from: u64,
        /// Step of the morph, `0..steps`.
        step: u32,
        /// Frames the morph takes.
        steps: u32,
    },
}

impl Scene {
    /// Slerp fraction of a morph step: `(step + 1) / (steps + 1)`, so neither
    /// end repeats a held face. 0 for a held face.
    pub fn fraction(&self) -> f32 {
        match *self {
            Scene::Hold { .. } => 0.0,
            Scene::Morph { step, steps, .. } => (step as f32 + 1.0) / (steps as f32 + 1.0),
        }
    }

    /// The face to name in the caption: the morph's target from its halfway
    /// point on.
    pub fn caption_face(&self) -> u64 {
        match *self {
            Scene::Hold { face } => face,
            Scene::Morph { from, .. } if self.fraction() < 0.5 => from,
            Scene::Morph { from, .. } => from.wrapping_add(1),
        }
    }
}

/// The kiosk's cycle: each face is held for `hold_frames`, then morphs into
/// the next one over `morph_frames`.
#[derive(Debug, Clone)]
pub struct Timeline {
    hold_frames: u32,
    morph_frames: u32,
    face: u64,
    step: u32,
}

impl Timeline {
    /// A timeline that starts at face `first`; a hold of 0 frames counts as 1.
    pub fn new(first: u64, hold_frames: u32, morph_frames: u32) -> Self {
        Timeline { hold_frames: hold_frames.max(1), morph_frames, face: first, step: 0 }
    }

    /// The scene of the current frame.
    pub fn scene(&self) -> Scene {
        if self.step < self.hold_frames {
            Scene::Hold { face: self.face }
        } else {
            Scene::Morph { from: self.face, step: self.step - self.hold_frames, steps: self.morph_frames }
        }
    }

    /// Moves to the next frame.
    pub fn advance(&mut self) {
        self.step += 1;
        if self.step >= self.hold_frames.saturating_add(self.morph_frames) {
            self.next_face();
        }
    }

    /// Skips to the next face: a held face starts its morph at once, and a
    /// running morph (or a cycle without morphs) jumps to the next face.
    pub fn skip(&mut self) {
        if self.step < self.hold_frames && self.morph_frames > 0 {
            self.step = self.hold_frames;
        } else {
            self.next_face();
        }
    }

    fn next_face(&mut self) {
        self.face = self.face.wrapping_add(1);
        self.step = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenes(timeline: &mut Timeline, frames: usize) -> Vec<Scene> {
        (0..frames)
            .map(|_| {
                let scene = timeline.scene();
                timeline.advance();
                scene
            })
            .collect()
    }

    #[test]
    fn holds_then_morphs() {
        let mut timeline = Timeline::new(0, 2, 3);
        let expected = [
            Scene::Hold { face: 0 },
            Scene::Hold { face: 0 },
            Scene::Morph { from: 0, step: 0, steps: 3 },
            Scene::Morph { from: 0, step: 1, steps: 3 },
            Scene::Morph { from: 0, step: 2, steps: 3 },
            Scene::Hold { face: 1 },
        ];
        assert_eq!(scenes(&mut timeline, 6), expected);
    }

    #[test]
    fn fractions_exclude_the_ends() {
        let fractions: Vec<f32> = (0..3).map(|step| Scene::Morph { from: 0, step, steps: 3 }.fraction()).collect();
        assert_eq!(fractions, [0.25, 0.5, 0.75]);
    }

    #[test]
    fn caption_switches_halfway() {
        assert_eq!(Scene::Morph { from: 4, step: 0, steps: 3 }.caption_face(), 4);
        assert_eq!(Scene::Morph { from: 4, step: 1, steps: 3 }.caption_face(), 5);
    }

    #[test]
    fn skip_starts_morph_then_next_face() {
        let mut timeline = Timeline::new(0, 10, 4);
        timeline.skip();
        assert_eq!(timeline.scene(), Scene::Morph { from: 0, step: 0, steps: 4 });
        timeline.skip();
        assert_eq!(timeline.scene(), Scene::Hold { face: 1 });
    }

    #[test]
    fn without_morph_faces_follow_each_other() {
        let mut timeline = Timeline::new(7, 0, 0);
        let expected = [Scene::Hold { face: 7 }, Scene::Hold { face: 8 }];
        assert_eq!(scenes(&mut timeline, 2), expected);
        timeline.skip();
        assert_eq!(timeline.scene(), Scene::Hold { face: 10 });
    }

    #[test]
    fn last_face_index_wraps() {
        let mut timeline = Timeline::new(u64::MAX, 1, 0);
        timeline.advance();
        assert_eq!(timeline.scene(), Scene::Hold { face: 0 });
    }
}
