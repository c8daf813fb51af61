//! The embedder against vectors sentence-transformers computed for the same model
//! (`fixtures/reference-vectors.json`; its `made_with` field says how). Needs the model:
//! `scripts/fetch-model.sh`.

use meshmind_models::{DIM, Embedder, cosine};

struct Fixture {
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/reference-vectors.json");
    let value: serde_json::Value = serde_json::from_str(text).expect("fixture is JSON");
    let sentences = value["sentences"]
        .as_array()
        .expect("sentences")
        .iter()
        .map(|s| s.as_str().expect("a sentence").to_string())
        .collect();
    let vectors = value["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            v.as_array()
                .expect("a vector")
                .iter()
                .map(|x| x.as_f64().expect("a number") as f32)
                .collect()
        })
        .collect();
    Fixture { sentences, vectors }
}

fn embedder() -> Embedder {
    Embedder::load_default().unwrap_or_else(|e| {
        panic!("the embedding model is needed here (scripts/fetch-model.sh fetches it): {e}")
    })
}

#[test]
fn matches_sentence_transformers_one_by_one_and_batched() {
    let fixture = fixture();
    let model = embedder();
    let batched = model.embed(&fixture.sentences).expect("embeds");
    assert_eq!(batched.len(), fixture.sentences.len());
    for (i, (sentence, reference)) in fixture.sentences.iter().zip(&fixture.vectors).enumerate() {
        let alone = model.embed(&[sentence]).expect("embeds").remove(0);
        assert_eq!(alone.len(), DIM);
        let norm = alone.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "sentence {i}: norm {norm}");
        let c = cosine(&alone, reference);
        assert!(
            c >= 0.9999,
            "sentence {i} alone: cosine {c} to the reference"
        );
        // Padding to the batch's longest text must not change a text's vector.
        let c = cosine(&batched[i], reference);
        assert!(
            c >= 0.9999,
            "sentence {i} in a batch: cosine {c} to the reference"
        );
    }
}

#[test]
fn close_meanings_are_closer_than_unrelated_ones() {
    let model = embedder();
    let v = model
        .embed(&[
            "A man is playing a guitar on the stage.",
            "Someone performs music with a stringed instrument.",
            "The stock market fell sharply on Tuesday.",
        ])
        .expect("embeds");
    let close = cosine(&v[0], &v[1]);
    let far = cosine(&v[0], &v[2]);
    assert!(close > far + 0.2, "close {close}, unrelated {far}");
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let model = embedder();
    let long = "x".repeat(meshmind_models::MAX_TEXT_BYTES + 1);
    let error = model.embed(&[long]).expect_err("too long").to_string();
    assert!(error.contains("at most"), "{error}");
    let many = vec!["a"; meshmind_models::MAX_BATCH + 1];
    assert!(model.embed(&many).is_err());
    assert!(model.embed::<&str>(&[]).expect("empty is fine").is_empty());
    // An empty text still has [CLS] and [SEP], so it has a vector.
    assert_eq!(model.embed(&[""]).expect("embeds")[0].len(), DIM);
}

#[test]
fn a_missing_model_names_the_fix() {
    let error = Embedder::load(std::path::Path::new("/nonexistent/model"))
        .expect_err("no model there")
        .to_string();
    assert!(error.contains("fetch-model.sh"), "{error}");
}
