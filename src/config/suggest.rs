//! "Did you mean …?": the nearest known name to a misspelt one.

/// The candidate nearest to `typed`, when it is near enough to be what was meant (a few edits,
/// or the same name in another case or separator style).
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(typed);
    candidates
        .into_iter()
        .map(|c| {
            let distance = if fold(c) == folded {
                0
            } else {
                strsim::damerau_levenshtein(&folded, &fold(c))
            };
            (distance, c)
        })
        .filter(|(distance, c)| *distance <= allowed_edits(typed.len().max(c.len())))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}

fn allowed_edits(len: usize) -> usize {
    match len {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn near_names_are_suggested_and_far_ones_are_not() {
        let keys = ["client_secret", "client_id", "scopes"];
        assert_eq!(nearest("client_secert", keys), Some("client_secret"));
        assert_eq!(nearest("CLIENT-ID", keys), Some("client_id"));
        assert_eq!(nearest("scope", keys), Some("scopes"));
        assert_eq!(nearest("listen", keys), None);
    }
}
