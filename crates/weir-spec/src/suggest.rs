//! "Did you mean" suggestions and name lists for help texts.

/// The candidate closest to `name`, when it is close enough to be a typo.
pub fn did_you_mean<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        // `integer` → `int`, `boolean` → `bool`: a longer spelling of a name.
        .filter(|(d, c)| {
            *d <= limit || (c.len() >= 3 && (c.starts_with(name) || name.starts_with(c)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "`a`, `b` and `c`".
pub fn list_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    let names: Vec<String> = names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect();
    match names.as_slice() {
        [] => "(none)".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(
            did_you_mean("retrys", ["retries", "timeout"]),
            Some("retries")
        );
        assert_eq!(did_you_mean("nedds", ["needs", "name"]), Some("needs"));
        assert_eq!(did_you_mean("zzz", ["retries", "timeout"]), None);
        assert_eq!(did_you_mean("a", ["a"]), None);
        assert_eq!(
            did_you_mean("integer", ["string", "int", "float", "bool"]),
            Some("int")
        );
    }

    #[test]
    fn lists_read_like_a_sentence() {
        assert_eq!(list_names(["a"]), "`a`");
        assert_eq!(list_names(["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(list_names(Vec::<String>::new()), "(none)");
    }
}
