//! The model zoo, embedded in the binary (see build.rs): `cnncost resnet50`
//! works without the zoo/ folder at hand.

include!(concat!(env!("OUT_DIR"), "/zoo.rs"));

/// A zoo network by name: `resnet50`, `resnet50.net` or `zoo/resnet50.net`.
pub fn find(name: &str) -> Option<(&'static str, &'static str)> {
    let stem = name.strip_prefix("zoo/").unwrap_or(name);
    let stem = stem.strip_suffix(".net").unwrap_or(stem);
    ZOO.iter().find(|(n, _)| *n == stem).copied()
}

/// What the header comment says the file follows: its first comment line,
/// without the leading `name.net:`.
pub fn source_line(text: &str) -> String {
    let first = text
        .lines()
        .find_map(|l| l.trim().strip_prefix('#'))
        .unwrap_or("")
        .trim();
    match first.split_once(": ") {
        Some((head, rest)) if head.ends_with(".net") => rest.trim().to_string(),
        _ => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert!(find("alexnet").is_some());
        assert!(find("zoo/alexnet.net").is_some());
        assert!(find("alexnet.net").is_some());
        assert!(find("nonet").is_none());
        assert!(ZOO.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }

    #[test]
    fn source_lines() {
        assert_eq!(
            source_line("# a.net: The paper (2012)\nnetwork a"),
            "The paper (2012)"
        );
    }
}
