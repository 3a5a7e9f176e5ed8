//! Procedurally drawn cartoon faces, a stand-in data set for demos and tests
//! when no photo folder is at hand.
//!
//! Each face is drawn with embedded-graphics primitives at twice the
//! requested size and averaged down 2x2, which smooths the edges. Faces vary
//! in background, clothing, skin tone, hair style and colour, eye colour,
//! eyebrows, mouth, glasses, and pose (shift, scale, head turn and tilt
//! imitated by moving the features).

use std::convert::Infallible;
use std::fs;
use std::io;
use std::path::Path;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Arc, Circle, Ellipse, Line, PrimitiveStyle, Rectangle, RoundedRectangle, Sector, Triangle,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::ImageSet;

/// Skin tones, light to dark.
const SKIN_TONES: [[u8; 3]; 8] = [
    [255, 224, 200],
    [246, 205, 175],
    [234, 185, 150],
    [222, 166, 120],
    [196, 134, 90],
    [160, 102, 64],
    [120, 76, 46],
    [86, 54, 34],
];

/// Hair colours: black, browns, auburn, blond, grey.
const HAIR_COLOURS: [[u8; 3]; 8] = [
    [22, 18, 18],
    [48, 32, 24],
    [82, 54, 34],
    [124, 82, 46],
    [150, 70, 36],
    [214, 178, 108],
    [236, 214, 160],
    [150, 150, 150],
];

/// Iris colours: brown, dark brown, blue, green, grey.
const IRIS_COLOURS: [[u8; 3]; 5] = [
    [102, 64, 34],
    [52, 34, 24],
    [64, 110, 170],
    [76, 120, 72],
    [110, 120, 130],
];

/// Draws `count` cartoon faces of `image_size` x `image_size` pixels.
///
/// The same `seed` always gives the same faces, whatever the number of
/// threads: face `i` draws from its own ChaCha8 stream `i`. Drawing runs in
/// parallel on rayon's global pool. An `image_size` of 0 gives an empty set.
pub fn synthetic_faces(count: usize, image_size: usize, seed: u64) -> ImageSet {
    let mut images = ImageSet::new(image_size);
    if image_size == 0 {
        return images;
    }

    let faces: Vec<Vec<u8>> = (0..count)
        .into_par_iter()
        .map(|index| draw_face(image_size, seed, index))
        .collect();
    images.reserve(count);
    for face in &faces {
        images.push(face);
    }
    images
}

/// Writes `count` synthetic faces as `face_000000.png`, `face_000001.png`,
/// ... into `dir`, creating it if needed, so the data can be looked at.
///
/// # Errors
/// Any I/O error creating the folder or writing a file, with the file named.
pub fn write_synthetic_pngs(
    dir: &Path,
    count: usize,
    image_size: usize,
    seed: u64,
) -> io::Result<()> {
    let side = u32::try_from(image_size).map_err(|_| {
        let message = format!(
            "invalid image size {image_size}: expected at most {}",
            u32::MAX
        );
        io::Error::new(io::ErrorKind::InvalidInput, message)
    })?;
    fs::create_dir_all(dir).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("failed to create {}: {error}", dir.display()),
        )
    })?;

    let images = synthetic_faces(count, image_size, seed);

    for index in 0..images.len() {
        let path = dir.join(format!("face_{index:06}.png"));
        image::save_buffer(
            &path,
            images.image(index),
            side,
            side,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|error| {
            io::Error::other(format!("failed to write {}: {error}", path.display()))
        })?;
    }
    Ok(())
}

/// Draws face `index` of the set given by `seed`, as interleaved RGB.
fn draw_face(image_size: usize, seed: u64, index: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);

    let face = Face::random(&mut rng);
    let mut canvas = Canvas::new(image_size * 2);
    face.draw(&mut canvas);
    canvas.downsample_2x()
}

/// An RGB pixel buffer that embedded-graphics draws into. Pixels outside it
/// are clipped.
struct Canvas {
    side: usize,
    pixels: Vec<[u8; 3]>,
}

impl Canvas {
    fn new(side: usize) -> Self {
        Self {
            side,
            pixels: vec![[0; 3]; side * side],
        }
    }

    /// Averages each 2x2 block into one pixel of a `side / 2` image.
    fn downsample_2x(&self) -> Vec<u8> {
        let half = self.side / 2;
        let mut out = Vec::with_capacity(half * half * 3);
        for y in 0..half {
            for x in 0..half {
                let corners = [
                    (2 * x, 2 * y),
                    (2 * x + 1, 2 * y),
                    (2 * x, 2 * y + 1),
                    (2 * x + 1, 2 * y + 1),
                ];
                for channel in 0..3 {
                    let sum: u16 = corners
                        .iter()
                        .map(|&(cx, cy)| u16::from(self.pixels[cy * self.side + cx][channel]))
                        .sum();
                    // The rounded mean of four bytes is at most 255.
                    out.push(((sum + 2) / 4) as u8);
                }
            }
        }
        out
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        let side = u32::try_from(self.side).unwrap_or(u32::MAX);
        Size::new(side, side)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(point, colour) in pixels {
            let (Ok(x), Ok(y)) = (usize::try_from(point.x), usize::try_from(point.y)) else {
                continue;
            };
            if x < self.side && y < self.side {
                self.pixels[y * self.side + x] = [colour.r(), colour.g(), colour.b()];
            }
        }
        Ok(())
    }
}

/// Hair styles.
#[derive(Clone, Copy)]
enum HairStyle {
    /// Short cap on top of the head.
    Short,
    /// Cap plus hair falling to the shoulders behind the head.
    Long,
    /// Large round volume around the head.
    Curly,
    /// Cap with a fringe swept to one side.
    SideFringe,
    /// Very little hair.
    Bald,
}

/// The parameters of one face, in units of the canvas side (0 to 1).
struct Face {
    background: [u8; 3],
    shirt: [u8; 3],
    skin: [u8; 3],
    hair: [u8; 3],
    iris: [u8; 3],
    lips: [u8; 3],
    style: HairStyle,
    /// Head centre.
    centre: (f32, f32),
    /// Head width and height.
    head: (f32, f32),
    /// Horizontal shift of the features, imitating a head turn.
    turn: f32,
    /// Vertical offset between the two eyes, imitating a tilt.
    tilt: f32,
    /// Pupil offset from the iris centre, as a fraction of the iris size.
    gaze: (f32, f32),
    hairline: f32,
    smile_open: bool,
    smile_width: f32,
    brow_angle: f32,
    glasses: bool,
}

impl Face {
    fn random(rng: &mut ChaCha8Rng) -> Self {
        let scale = rng.gen_range(0.88..1.1);
        let width = rng.gen_range(0.40..0.48) * scale;
        let height = width * rng.gen_range(1.2..1.36);
        let style = match rng.gen_range(0..10) {
            0..=2 => HairStyle::Short,
            3..=5 => HairStyle::Long,
            6 => HairStyle::Curly,
            7 | 8 => HairStyle::SideFringe,
            _ => HairStyle::Bald,
        };
        let skin_tone = SKIN_TONES[rng.gen_range(0..SKIN_TONES.len())];
        let skin = jitter(rng, skin_tone, 10);
        let hair_colour = HAIR_COLOURS[rng.gen_range(0..HAIR_COLOURS.len())];

        Self {
            background: random_background(rng),
            shirt: [
                rng.gen_range(20..230),
                rng.gen_range(20..230),
                rng.gen_range(20..230),
            ],
            skin,
            hair: jitter(rng, hair_colour, 12),
            iris: IRIS_COLOURS[rng.gen_range(0..IRIS_COLOURS.len())],
            lips: mix(skin, [170, 50, 60], rng.gen_range(0.35..0.6)),
            style,
            centre: (
                0.5 + rng.gen_range(-0.05..0.05),
                0.46 + rng.gen_range(-0.04..0.04),
            ),
            head: (width, height),
            turn: rng.gen_range(-0.05..0.05) * width,
            tilt: rng.gen_range(-0.04..0.04) * height,
            gaze: (rng.gen_range(-0.3..0.3), rng.gen_range(-0.2..0.2)),
            hairline: rng.gen_range(0.12..0.24),
            smile_open: rng.gen_bool(0.4),
            smile_width: rng.gen_range(0.32..0.46),
            brow_angle: rng.gen_range(-0.03..0.05),
            glasses: rng.gen_bool(0.12),
        }
    }

    fn draw(&self, canvas: &mut Canvas) {
        let pen = Pen {
            side: canvas.side as f32,
        };
        let _ = canvas.clear(rgb(self.background));

        self.draw_body(canvas, pen);
        self.draw_hair_behind(canvas, pen);
        self.draw_head(canvas, pen);
        self.draw_hair_on_top(canvas, pen);
        self.draw_eyes(canvas, pen);
        self.draw_nose_and_mouth(canvas, pen);
        if self.glasses {
            self.draw_glasses(canvas, pen);
        }
    }

    fn draw_body(&self, canvas: &mut Canvas, pen: Pen) {
        let (cx, cy) = self.centre;
        let (width, height) = self.head;

        let shoulders = Ellipse::with_center(
            pen.point(cx, cy + height * 0.5 + 0.3),
            pen.size(width * 2.3, 0.5),
        );
        let _ = shoulders.into_styled(fill(self.shirt)).draw(canvas);

        let neck_top = pen.point(cx - width * 0.22, cy + height * 0.2);
        let neck = Rectangle::new(neck_top, pen.size(width * 0.44, height * 0.5));
        let _ = neck.into_styled(fill(shade(self.skin, 0.82))).draw(canvas);
    }

    fn draw_hair_behind(&self, canvas: &mut Canvas, pen: Pen) {
        let (cx, cy) = self.centre;
        let (width, height) = self.head;

        match self.style {
            HairStyle::Long => {
                let top_left = pen.point(cx - width * 0.62, cy - height * 0.42);
                let back = Rectangle::new(top_left, pen.size(width * 1.24, height * 1.05));
                let radius = pen.size(width * 0.5, width * 0.5);
                let rounded = RoundedRectangle::with_equal_corners(back, radius);
                let _ = rounded.into_styled(fill(self.hair)).draw(canvas);
            }
            HairStyle::Curly => {
                let volume = Ellipse::with_center(
                    pen.point(cx, cy - height * 0.12),
                    pen.size(width * 1.45, height * 1.05),
                );
                let _ = volume.into_styled(fill(self.hair)).draw(canvas);
            }
            HairStyle::Short | HairStyle::SideFringe | HairStyle::Bald => {}
        }

        // Ears sit behind the head outline, at eye height.
        let ear_colour = shade(self.skin, 0.9);
        for side in [-1.0, 1.0] {
            let ear = Ellipse::with_center(
                pen.point(cx + side * width * 0.49, cy + height * 0.02),
                pen.size(width * 0.18, height * 0.2),
            );
            let _ = ear.into_styled(fill(ear_colour)).draw(canvas);
        }
    }

    fn draw_head(&self, canvas: &mut Canvas, pen: Pen) {
        let (cx, cy) = self.centre;
        let head = Ellipse::with_center(pen.point(cx, cy), pen.size(self.head.0, self.head.1));
        let _ = head.into_styled(fill(self.skin)).draw(canvas);
    }

    /// Draws the hair cap: an ellipse a little larger than the head, kept
    /// only above the hairline.
    fn draw_hair_on_top(&self, canvas: &mut Canvas, pen: Pen) {
        let (cx, cy) = self.centre;
        let (width, height) = self.head;
        let hairline = match self.style {
            HairStyle::Bald => cy - height * 0.43,
            _ => cy - height * self.hairline,
        };

        let cap = Ellipse::with_center(
            pen.point(cx, cy - height * 0.06),
            pen.size(width * 1.1, height * 1.02),
        );
        let above_hairline = Rectangle::new(
            Point::zero(),
            Size::new(canvas.size().width, pen.length(hairline)),
        );
        let _ = cap
            .into_styled(fill(self.hair))
            .draw(&mut canvas.clipped(&above_hairline));

        if let HairStyle::SideFringe = self.style {
            let side = if self.turn >= 0.0 { 1.0 } else { -1.0 };
            let fringe = Triangle::new(
                pen.point(cx - side * width * 0.5, hairline - height * 0.02),
                pen.point(cx + side * width * 0.52, hairline - height * 0.02),
                pen.point(cx + side * width * 0.45, cy - height * 0.08),
            );
            let _ = fringe.into_styled(fill(self.hair)).draw(canvas);
        }
    }

    fn draw_eyes(&self, canvas: &mut Canvas, pen: Pen) {
        let (cx, cy) = self.centre;
        let (width, height) = self.head;
        let brow_colour = shade(self.hair, 0.7);

        for side in [-1.0f32, 1.0] {
            let ex = cx + self.turn + side * width * 0.21;
            let ey = cy - height * 0.03 + side * self.tilt * 0.5;

            let white =
                Ellipse::with_center(pen.point(ex, ey), pen.size(width * 0.22, height * 0.09));
            let _ = white.into_styled(fill([245, 245, 240])).draw(canvas);

            let iris_diameter = height * 0.085;
            let iris_centre = (
                ex + self.gaze.0 * iris_diameter * 0.5,
                ey + self.gaze.1 * iris_diameter * 0.3,
            );
            let iris = Circle::with_center(
                pen.point(iris_centre.0, iris_centre.1),
                pen.length(iris_diameter),
            );
            let _ = iris.into_styled(fill(self.iris)).draw(canvas);
            let pupil = Circle::with_center(
                pen.point(iris_centre.0, iris_centre.1),
                pen.length(iris_diameter * 0.5),
            );
            let _ = pupil.into_styled(fill([10, 10, 10])).draw(canvas);

            let brow_y = ey - height * 0.09;
            let inner = pen.point(ex - side * width * 0.1, brow_y + self.brow_angle * height);
            let outer = pen.point(
                ex + side * width * 0.11,
                brow_y - self.brow_angle * height * 0.5,
            );
            let brow_style =
                PrimitiveStyle::with_stroke(rgb(brow_colour), pen.length(height * 0.035).max(2));
            let _ = Line::new(inner, outer).into_styled(brow_style).draw(canvas);
        }
    }

    fn draw_nose_and_mouth(&self, canvas: &mut Canvas, pen: Pen) {
        let (cx, cy) = self.centre;
        let (width, height) = self.head;
        let nx = cx + self.turn * 1.3;

        let nose = Triangle::new(
            pen.point(nx, cy + height * 0.02),
            pen.point(nx - width * 0.08, cy + height * 0.17),
            pen.point(nx + width * 0.08, cy + height * 0.17),
        );
        let _ = nose.into_styled(fill(shade(self.skin, 0.84))).draw(canvas);

        let mouth_centre = pen.point(nx, cy + height * 0.2);
        if self.smile_open {
            let diameter = pen.length(width * self.smile_width * 1.15);
            let mouth = Sector::with_center(
                mouth_centre,
                diameter,
                Angle::from_degrees(10.0),
                Angle::from_degrees(160.0),
            );
            let _ = mouth.into_styled(fill([90, 20, 30])).draw(canvas);

            let teeth_band = Rectangle::new(mouth_centre, Size::new(diameter, diameter / 7 + 1));
            let teeth_band = Rectangle::new(
                teeth_band.top_left - Point::new(diameter as i32 / 2, 0),
                teeth_band.size,
            );
            let _ = mouth
                .into_styled(fill([240, 240, 235]))
                .draw(&mut canvas.clipped(&teeth_band));
        } else {
            let diameter = pen.length(width * self.smile_width * 1.4);
            let stroke =
                PrimitiveStyle::with_stroke(rgb(self.lips), pen.length(height * 0.035).max(2));
            let mouth = Arc::with_center(
                mouth_centre,
                diameter,
                Angle::from_degrees(25.0),
                Angle::from_degrees(130.0),
            );
            let _ = mouth.into_styled(stroke).draw(canvas);
        }
    }

    fn draw_glasses(&self, canvas: &mut Canvas, pen: Pen) {
        let (cx, cy) = self.centre;
        let (width, height) = self.head;
        let stroke =
            PrimitiveStyle::with_stroke(Rgb888::new(30, 30, 30), pen.length(height * 0.02).max(2));
        let mut lens_centres = Vec::with_capacity(2);

        for side in [-1.0f32, 1.0] {
            let ex = cx + self.turn + side * width * 0.21;
            let ey = cy - height * 0.03 + side * self.tilt * 0.5;
            let lens = Circle::with_center(pen.point(ex, ey), pen.length(width * 0.32));
            let _ = lens.into_styled(stroke).draw(canvas);
            lens_centres.push((ex, ey));
        }

        let bridge = Line::new(
            pen.point(lens_centres[0].0 + width * 0.16, lens_centres[0].1),
            pen.point(lens_centres[1].0 - width * 0.16, lens_centres[1].1),
        );
        let _ = bridge.into_styled(stroke).draw(canvas);
    }
}

/// Converts lengths and positions in canvas units (0 to 1) to pixels.
#[derive(Clone, Copy)]
struct Pen {
    side: f32,
}

impl Pen {
    fn point(self, x: f32, y: f32) -> Point {
        Point::new(
            (x * self.side).round() as i32,
            (y * self.side).round() as i32,
        )
    }

    fn length(self, length: f32) -> u32 {
        (length * self.side).round().max(1.0) as u32
    }

    fn size(self, width: f32, height: f32) -> Size {
        Size::new(self.length(width), self.length(height))
    }
}

fn random_background(rng: &mut ChaCha8Rng) -> [u8; 3] {
    let base: [u8; 3] = [
        rng.gen_range(40..235),
        rng.gen_range(40..235),
        rng.gen_range(40..235),
    ];
    let grey = rng.gen_range(60..220);
    // Photo backgrounds are mostly muted, so pull the colour towards a grey.
    mix(base, [grey; 3], rng.gen_range(0.3..0.8))
}

fn jitter(rng: &mut ChaCha8Rng, colour: [u8; 3], amount: i16) -> [u8; 3] {
    colour.map(|channel| (i16::from(channel) + rng.gen_range(-amount..=amount)).clamp(0, 255) as u8)
}

/// Linear mix: `t = 0` gives `a`, `t = 1` gives `b`.
fn mix(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    std::array::from_fn(|channel| {
        (f32::from(a[channel]) * (1.0 - t) + f32::from(b[channel]) * t).round() as u8
    })
}

fn shade(colour: [u8; 3], factor: f32) -> [u8; 3] {
    colour.map(|channel| (f32::from(channel) * factor).round().min(255.0) as u8)
}

fn rgb(colour: [u8; 3]) -> Rgb888 {
    Rgb888::new(colour[0], colour[1], colour[2])
}

fn fill(colour: [u8; 3]) -> PrimitiveStyle<Rgb888> {
    PrimitiveStyle::with_fill(rgb(colour))
}
