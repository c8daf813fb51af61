//! Sentences for embedding challenges, generated from word lists: 331,776 different
//! sentences, so a miner cannot answer challenges from a table made in advance.

const SUBJECTS: [&str; 24] = [
    "The old fisherman",
    "A young doctor",
    "The city council",
    "Our neighbour's cat",
    "A tired student",
    "The orchestra",
    "A small startup",
    "The river",
    "Every farmer in the valley",
    "The museum's curator",
    "A lost tourist",
    "The night train",
    "My grandmother",
    "The football team",
    "A curious child",
    "The hospital",
    "An experienced pilot",
    "The storm",
    "The new teacher",
    "A flock of geese",
    "The baker on the corner",
    "The software engineer",
    "A quiet librarian",
    "The mountain village",
];

const VERBS: [&str; 24] = [
    "repaired",
    "painted",
    "discovered",
    "sold",
    "carried",
    "celebrated",
    "ignored",
    "studied",
    "flooded",
    "photographed",
    "rebuilt",
    "questioned",
    "borrowed",
    "delivered",
    "cleaned",
    "described",
    "measured",
    "defended",
    "translated",
    "planted",
    "guarded",
    "recorded",
    "inspected",
    "shared",
];

const OBJECTS: [&str; 24] = [
    "a wooden boat",
    "the broken bridge",
    "an ancient map",
    "fresh bread",
    "the heavy boxes",
    "a birthday cake",
    "the warning signs",
    "quantum physics",
    "the lower fields",
    "a rare orchid",
    "the stone chapel",
    "the witnesses",
    "three library books",
    "medical supplies",
    "the dusty attic",
    "a strange dream",
    "the distance to the moon",
    "the small harbour",
    "an old poem",
    "apple trees",
    "the royal treasure",
    "a new song",
    "the engine",
    "their lunch",
];

const SETTINGS: [&str; 24] = [
    "before sunrise.",
    "during the winter festival.",
    "in the pouring rain.",
    "after a long argument.",
    "for the third time this year.",
    "without asking anyone.",
    "near the harbour.",
    "with great care.",
    "under a full moon.",
    "in less than an hour.",
    "while everyone was asleep.",
    "at the edge of the forest.",
    "on a quiet Sunday.",
    "despite the warnings.",
    "for a school project.",
    "in the middle of the night.",
    "using only simple tools.",
    "to everyone's surprise.",
    "next to the railway station.",
    "as the crowd cheered.",
    "before the election.",
    "in a hurry.",
    "beside the frozen lake.",
    "for almost no money.",
];

/// The sentence drawn by `seed`.
pub(super) fn sentence(seed: u64) -> String {
    let mix = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23);
    let pick = |list: &[&'static str; 24], shift: u32| list[((mix >> shift) % 24) as usize];
    format!(
        "{} {} {} {}",
        pick(&SUBJECTS, 0),
        pick(&VERBS, 8),
        pick(&OBJECTS, 16),
        pick(&SETTINGS, 24)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn sentences_vary() {
        let drawn: std::collections::BTreeSet<String> = (0..2_000u64)
            .map(|s| super::sentence(s.wrapping_mul(0x1234_5677)))
            .collect();
        assert!(drawn.len() > 1_900, "{} distinct of 2000", drawn.len());
        assert!(super::sentence(7).ends_with('.'));
    }
}
