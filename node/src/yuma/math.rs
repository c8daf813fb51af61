//! Sparse fixed-point linear algebra for Yuma consensus.

use super::Fx;

/// A u16 value as a fraction of 65535.
pub(super) fn fraction(value: u16) -> Fx {
    Fx::from_num(value) / Fx::from_num(u16::MAX)
}

/// A fraction in `[0, 1]` as a u16 share of 65535 (rounded down, clamped).
pub(super) fn to_u16(x: Fx) -> u16 {
    let scaled = x.saturating_mul(Fx::from_num(u16::MAX));
    if scaled <= Fx::ZERO {
        0
    } else if scaled >= Fx::from_num(u16::MAX) {
        u16::MAX
    } else {
        scaled.to_num::<u16>()
    }
}

/// ln 2 in 32.32 fixed point.
const LN_2: Fx = Fx::from_bits(2_977_044_472);

/// `e^x`, deterministic to the bit: `x` is clamped to `[-20, 20]`, reduced to `r + k·ln 2` with
/// `r` in `[0, ln 2)`, `e^r` summed as a Taylor series in fixed point, then shifted by `k`.
pub(super) fn exp(x: Fx) -> Fx {
    let x = x.clamp(Fx::from_num(-20), Fx::from_num(20));
    let k = (x / LN_2).floor();
    let r = x - k * LN_2;
    let (mut term, mut total) = (Fx::ONE, Fx::ONE);
    for n in 1..=16u32 {
        term = term * r / Fx::from_num(n);
        if term == Fx::ZERO {
            break;
        }
        total += term;
    }
    let k = k.to_num::<i32>();
    if k >= 0 {
        total << k.unsigned_abs()
    } else {
        total >> k.unsigned_abs()
    }
}

/// Sum of a vector.
fn sum(values: &[Fx]) -> Fx {
    values.iter().fold(Fx::ZERO, |a, &b| a + b)
}

/// Scales a vector to sum to 1 (left as is if it sums to zero).
pub(super) fn normalize(values: &mut [Fx]) {
    let total = sum(values);
    if total > Fx::ZERO {
        for value in values.iter_mut() {
            *value /= total;
        }
    }
}

/// A sparse square matrix of n rows; each row holds `(column, value)` sorted by column.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sparse {
    /// The rows.
    pub rows: Vec<Vec<(u32, Fx)>>,
}

impl Sparse {
    /// An empty n x n matrix.
    pub(super) fn new(n: usize) -> Self {
        Self {
            rows: vec![Vec::new(); n],
        }
    }

    fn n(&self) -> usize {
        self.rows.len()
    }

    /// Sorts each row by column and merges repeated columns (the last value wins).
    pub(super) fn sort_rows(&mut self) {
        for row in &mut self.rows {
            row.sort_by_key(|&(j, _)| j);
            let mut merged: Vec<(u32, Fx)> = Vec::with_capacity(row.len());
            for &(j, v) in row.iter() {
                match merged.last_mut() {
                    Some(last) if last.0 == j => last.1 = v,
                    _ => merged.push((j, v)),
                }
            }
            *row = merged;
        }
    }

    /// Scales each row to sum to 1.
    pub(super) fn row_normalize(&mut self) {
        for row in &mut self.rows {
            let total = row.iter().fold(Fx::ZERO, |a, &(_, v)| a + v);
            if total > Fx::ZERO {
                for (_, v) in row.iter_mut() {
                    *v /= total;
                }
            }
        }
    }

    /// Row sums.
    pub(super) fn row_sums(&self) -> Vec<Fx> {
        self.rows
            .iter()
            .map(|row| row.iter().fold(Fx::ZERO, |a, &(_, v)| a + v))
            .collect()
    }

    /// `Σ_i s_i · M_ij` for each column j.
    pub(super) fn weighted_col_sums(&self, s: &[Fx]) -> Vec<Fx> {
        let mut out = vec![Fx::ZERO; self.n()];
        for (i, row) in self.rows.iter().enumerate() {
            if s[i] == Fx::ZERO {
                continue;
            }
            for &(j, v) in row {
                out[j as usize] += s[i] * v;
            }
        }
        out
    }

    /// For each column j, the largest value w such that rows holding at least `kappa` of the stake
    /// `s` gave column j at least w (0 if no such value).
    pub(super) fn weighted_median_cols(&self, s: &[Fx], kappa: Fx) -> Vec<Fx> {
        let mut columns: Vec<Vec<(Fx, Fx)>> = vec![Vec::new(); self.n()];
        for (i, row) in self.rows.iter().enumerate() {
            if s[i] == Fx::ZERO {
                continue;
            }
            for &(j, v) in row {
                if v > Fx::ZERO {
                    columns[j as usize].push((v, s[i]));
                }
            }
        }
        columns
            .into_iter()
            .map(|mut column| {
                column.sort_by_key(|entry| std::cmp::Reverse(entry.0));
                let mut held = Fx::ZERO;
                for (value, stake) in column {
                    held += stake;
                    if held >= kappa {
                        return value;
                    }
                }
                Fx::ZERO
            })
            .collect()
    }

    /// Each entry clipped to its column's cap.
    pub(super) fn clip_cols(&self, caps: &[Fx]) -> Sparse {
        Sparse {
            rows: self
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .filter_map(|&(j, v)| {
                            let clipped = v.min(caps[j as usize]);
                            (clipped > Fx::ZERO).then_some((j, clipped))
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// Row i multiplied by `s_i`.
    pub(super) fn scale_rows(&self, s: &[Fx]) -> Sparse {
        Sparse {
            rows: self
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    row.iter()
                        .filter_map(|&(j, v)| {
                            let scaled = v * s[i];
                            (scaled > Fx::ZERO).then_some((j, scaled))
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// `alpha · self + (1 - alpha) · old`, entry by entry over the union of both patterns.
    pub(super) fn ema(&self, old: &Sparse, alpha: Fx) -> Sparse {
        self.ema_with(old, |_, _, _| alpha)
    }

    /// Like [`Self::ema`] with an alpha per entry: `alpha(column, new value, old value)`, where a
    /// value missing from one pattern is zero.
    pub(super) fn ema_with(&self, old: &Sparse, alpha: impl Fn(usize, Fx, Fx) -> Fx) -> Sparse {
        let rows = self
            .rows
            .iter()
            .zip(&old.rows)
            .map(|(new, old)| {
                let mut out = Vec::with_capacity(new.len().max(old.len()));
                let (mut a, mut b) = (new.iter().peekable(), old.iter().peekable());
                loop {
                    let (j, va, vb) = match (a.peek(), b.peek()) {
                        (Some(&&(ja, va)), Some(&&(jb, vb))) if ja == jb => {
                            a.next();
                            b.next();
                            (ja, va, vb)
                        }
                        (Some(&&(ja, va)), Some(&&(jb, _))) if ja < jb => {
                            a.next();
                            (ja, va, Fx::ZERO)
                        }
                        (Some(_), Some(&&(jb, vb))) => {
                            b.next();
                            (jb, Fx::ZERO, vb)
                        }
                        (Some(&&(ja, va)), None) => {
                            a.next();
                            (ja, va, Fx::ZERO)
                        }
                        (None, Some(&&(jb, vb))) => {
                            b.next();
                            (jb, Fx::ZERO, vb)
                        }
                        (None, None) => break,
                    };
                    let alpha = alpha(j as usize, va, vb);
                    let value = alpha * va + (Fx::ONE - alpha) * vb;
                    if value > Fx::ZERO {
                        out.push((j, value));
                    }
                }
                out
            })
            .collect();
        Sparse { rows }
    }

    /// Each entry as a u16 share of 65535.
    pub(super) fn to_u16_rows(&self) -> Vec<Vec<(u32, u16)>> {
        self.rows
            .iter()
            .map(|row| row.iter().map(|&(j, v)| (j, to_u16(v))).collect())
            .collect()
    }

    /// `Σ_j M_ij · v_j` for each row i.
    pub(super) fn mul_vec(&self, v: &[Fx]) -> Vec<Fx> {
        self.rows
            .iter()
            .map(|row| {
                row.iter()
                    .fold(Fx::ZERO, |a, &(j, m)| a + m * v[j as usize])
            })
            .collect()
    }

    /// Each column scaled so its largest entry is 65535, as u16.
    pub(super) fn col_max_upscale_u16(&self) -> Vec<Vec<(u32, u16)>> {
        let mut max = vec![Fx::ZERO; self.n()];
        for row in &self.rows {
            for &(j, v) in row {
                let m = &mut max[j as usize];
                if v > *m {
                    *m = v;
                }
            }
        }
        self.rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(j, v)| {
                        let m = max[j as usize];
                        let share = if m > Fx::ZERO { v / m } else { Fx::ZERO };
                        (j, to_u16(share))
                    })
                    .collect()
            })
            .collect()
    }
}

/// Scales each column to sum to 1.
pub(super) fn col_normalize(matrix: &mut Sparse) {
    let mut totals = vec![Fx::ZERO; matrix.rows.len()];
    for row in &matrix.rows {
        for &(j, v) in row {
            totals[j as usize] += v;
        }
    }
    for row in &mut matrix.rows {
        for (j, v) in row.iter_mut() {
            let total = totals[*j as usize];
            if total > Fx::ZERO {
                *v /= total;
            }
        }
    }
}
