//! `losses.csv`: one row per iteration.
//!
//! Columns: `epoch` (from 0, as in the log lines), `iteration` (global, from
//! 1), `loss_d`, `loss_g`, `d_x`, `d_g_z1`, `d_g_z2`, `sample_diversity`.
//! Floats are written in the shortest form that parses back to the same f32.
//! `sample_diversity` (the mode-collapse monitor's value) is filled on the
//! iterations that render a sample grid and empty on the others. Logs
//! written before that column existed, with 7 columns, still read.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{IterationStats, TrainError};
use crate::checkpoint::write_atomic;

/// File name of the loss log inside a run directory.
pub const LOSSES_FILE: &str = "losses.csv";

/// Header line of the loss log.
pub const LOSSES_HEADER: &str = "epoch,iteration,loss_d,loss_g,d_x,d_g_z1,d_g_z2,sample_diversity";

/// Header line of loss logs without the `sample_diversity` column.
pub const LOSSES_HEADER_WITHOUT_DIVERSITY: &str = "epoch,iteration,loss_d,loss_g,d_x,d_g_z1,d_g_z2";

/// One row of the loss log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossRecord {
    /// Epoch, counted from 0.
    pub epoch: u64,
    /// Global iteration, counted from 1.
    pub iteration: u64,
    /// Discriminator loss.
    pub loss_d: f32,
    /// Generator loss.
    pub loss_g: f32,
    /// Mean discriminator output on real images.
    pub d_x: f32,
    /// Mean discriminator output on fakes before the discriminator step.
    pub d_g_z1: f32,
    /// Mean discriminator output on fakes after the discriminator step.
    pub d_g_z2: f32,
    /// Mean pairwise distance of the fixed-noise samples, on iterations that
    /// rendered them.
    pub sample_diversity: Option<f32>,
}

/// Reads every row of a loss log.
pub fn read_loss_log(path: &Path) -> Result<Vec<LossRecord>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io { path: path.to_owned(), source })?;
    let mut lines = text.lines().enumerate();
    let columns = match lines.next() {
        Some((_, header)) if header.trim() == LOSSES_HEADER => 8,
        Some((_, header)) if header.trim() == LOSSES_HEADER_WITHOUT_DIVERSITY => 7,
        _ => return Err(invalid(path, 1, format!("the first line is not the header {LOSSES_HEADER:?}"))),
    };
    lines
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| parse_row(line, columns).map_err(|problem| invalid(path, index + 1, problem)))
        .collect()
}

fn parse_row(line: &str, columns: usize) -> Result<LossRecord, String> {
    let fields: Vec<&str> = line.trim().split(',').collect();
    if fields.len() != columns {
        return Err(format!("expected {columns} comma-separated fields, found {}", fields.len()));
    }
    let integer =
        |index: usize| fields[index].parse::<u64>().map_err(|_| format!("invalid integer {:?}", fields[index]));
    let float = |index: usize| fields[index].parse::<f32>().map_err(|_| format!("invalid number {:?}", fields[index]));
    Ok(LossRecord {
        epoch: integer(0)?,
        iteration: integer(1)?,
        loss_d: float(2)?,
        loss_g: float(3)?,
        d_x: float(4)?,
        d_g_z1: float(5)?,
        d_g_z2: float(6)?,
        sample_diversity: match fields.get(7).map(|field| field.trim()) {
            None | Some("") => None,
            Some(_) => Some(float(7)?),
        },
    })
}

fn invalid(path: &Path, line: usize, problem: String) -> TrainError {
    TrainError::LossLog { path: path.to_owned(), line, problem }
}

/// The open loss log of a running training.
pub(crate) struct LossLog {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl LossLog {
    /// Starts a new log, replacing any file at `path`.
    pub(crate) fn create(path: &Path) -> Result<Self, TrainError> {
        write_atomic(path, format!("{LOSSES_HEADER}\n").as_bytes())
            .map_err(|source| TrainError::Io { path: path.to_owned(), source })?;
        Self::open_append(path)
    }

    /// Continues the log of a run resumed after `iteration` iterations: rows
    /// of later iterations, written after that checkpoint, are dropped first.
    pub(crate) fn resume(path: &Path, iteration: u64) -> Result<Self, TrainError> {
        if !path.exists() {
            log::warn!("{} is missing: the resumed loss log starts at iteration {}", path.display(), iteration + 1);
            return Self::create(path);
        }

        let records = read_loss_log(path)?;
        let rows_to_keep: Vec<&LossRecord> = records.iter().filter(|record| record.iteration <= iteration).collect();
        if rows_to_keep.len() < records.len() {
            log::info!("dropping {} loss rows written after iteration {iteration}", records.len() - rows_to_keep.len());
        }
        let mut text = format!("{LOSSES_HEADER}\n");
        for record in rows_to_keep {
            text.push_str(&format_row(record));
        }
        write_atomic(path, text.as_bytes()).map_err(|source| TrainError::Io { path: path.to_owned(), source })?;
        Self::open_append(path)
    }

    fn open_append(path: &Path) -> Result<Self, TrainError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| TrainError::Io { path: path.to_owned(), source })?;
        Ok(Self { path: path.to_owned(), writer: BufWriter::new(file) })
    }

    /// Appends the row of one iteration and flushes it to the file.
    pub(crate) fn append(&mut self, stats: &IterationStats) -> Result<(), TrainError> {
        let record = LossRecord {
            epoch: stats.epoch,
            iteration: stats.iteration,
            loss_d: stats.loss_d,
            loss_g: stats.loss_g,
            d_x: stats.d_x,
            d_g_z1: stats.d_g_z1,
            d_g_z2: stats.d_g_z2,
            sample_diversity: stats.sample_diversity,
        };
        self.writer
            .write_all(format_row(&record).as_bytes())
            .and_then(|()| self.writer.flush())
            .map_err(|source| TrainError::Io { path: self.path.clone(), source })
    }
}

fn format_row(record: &LossRecord) -> String {
    let diversity = record.sample_diversity.map(|value| value.to_string()).unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{diversity}\n",
        record.epoch, record.iteration, record.loss_d, record.loss_g, record.d_x, record.d_g_z1, record.d_g_z2
    )
}
