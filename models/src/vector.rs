//! Embedding vectors: their wire form (little-endian f32) and how two are compared.

/// Why bytes are not an embedding vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorError {
    /// The length is not the expected number of 4-byte floats.
    #[error("{got} bytes is not a vector of {dim} f32 values ({} bytes)", dim * 4)]
    Length {
        /// Bytes received.
        got: usize,
        /// Dimensions expected.
        dim: usize,
    },
    /// A component is NaN or infinite.
    #[error("component {0} is not a finite number")]
    NotFinite(usize),
}

/// `vector` as little-endian f32 bytes, the form embeddings travel in.
pub fn to_le_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The `dim`-dimensional vector in little-endian f32 `bytes`; every component must be finite.
pub fn from_le_bytes(bytes: &[u8], dim: usize) -> Result<Vec<f32>, VectorError> {
    if bytes.len() != dim.saturating_mul(4) {
        return Err(VectorError::Length {
            got: bytes.len(),
            dim,
        });
    }
    bytes
        .chunks_exact(4)
        .enumerate()
        .map(|(i, c)| {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if v.is_finite() {
                Ok(v)
            } else {
                Err(VectorError::NotFinite(i))
            }
        })
        .collect()
}

/// Scales `vector` to unit length (a zero vector stays zero).
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
}

/// The cosine of the angle between `a` and `b`, in [-1, 1]; 0 when either is zero or their
/// lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    ((dot / (na.sqrt() * nb.sqrt())) as f32).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_refuse_bad_input() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(from_le_bytes(&to_le_bytes(&v), 3), Ok(v));
        assert_eq!(
            from_le_bytes(&[0; 7], 2),
            Err(VectorError::Length { got: 7, dim: 2 })
        );
        let nan = to_le_bytes(&[1.0, f32::NAN]);
        assert_eq!(from_le_bytes(&nan, 2), Err(VectorError::NotFinite(1)));
    }

    #[test]
    fn cosine_and_normalize() {
        let mut v = vec![3.0f32, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!((cosine(&v, &[6.0, 8.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&[1.0, 0.0], &[0.0, 2.0])).abs() < 1e-6);
        assert!((cosine(&[1.0, 0.0], &[-1.0, 0.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }
}
