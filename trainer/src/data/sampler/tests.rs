use super::*;

#[test]
fn passes_cover_a_group_before_repeating() {
    let items: Vec<usize> = (10..17).collect();
    let mut rng = epoch_rng(3, 0, 0);
    let mut p = Passes::new(&items);
    let mut out = Vec::new();
    p.take(7, &mut rng, &mut out);
    let mut sorted = out.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, items);
}

#[test]
fn passes_avoid_repeats_across_a_pass_boundary() {
    let items: Vec<usize> = (0..5).collect();
    for seed in 0..50 {
        let mut rng = epoch_rng(seed, 0, 0);
        let mut p = Passes::new(&items);
        let mut out = Vec::new();
        p.take(3, &mut rng, &mut out);
        out.clear();
        // 2 left in this pass, 2 from the next: still 4 distinct.
        p.take(4, &mut rng, &mut out);
        let set: BTreeSet<usize> = out.iter().copied().collect();
        assert_eq!(set.len(), 4, "seed {seed}: {out:?}");
    }
}

#[test]
fn passes_repeat_when_the_group_is_smaller_than_the_draw() {
    let items = [4usize, 9];
    let mut rng = epoch_rng(1, 0, 0);
    let mut out = Vec::new();
    Passes::new(&items).take(5, &mut rng, &mut out);
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|i| items.contains(i)));
    assert_eq!(
        out.iter()
            .filter(|&&i| i == 4)
            .count()
            .abs_diff(out.iter().filter(|&&i| i == 9).count()),
        1
    );
}
