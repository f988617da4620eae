//! Pseudo-domain clustering for D²AM (Chen et al., AAAI 2021, §3.1 "Domain Clustering"):
//! K-means with k-means++ seeding, the Kuhn–Munkres (Hungarian) assignment that keeps
//! cluster ids stable between epochs, and normalised mutual information for the logs.
//!
//! Everything works on host-side `f64` rows (`n × dim`, row-major) and is deterministic for a
//! given seed: the clustering of one epoch is a pure function of the features and
//! `(seed, epoch)`, which keeps resumed runs bit-identical.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The result of [`kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// `k` centroids, each `dim` long.
    pub centroids: Vec<Vec<f64>>,
    /// Cluster of every point.
    pub labels: Vec<usize>,
    /// Sum of squared distances of the points to their centroids.
    pub inertia: f64,
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Index of the centroid nearest to `p` (the first on ties).
pub fn nearest(centroids: &[Vec<f64>], p: &[f64]) -> usize {
    let mut best = (0, f64::INFINITY);
    for (j, c) in centroids.iter().enumerate() {
        let d = dist2(c, p);
        if d < best.1 {
            best = (j, d);
        }
    }
    best.0
}

/// k-means++ seeding (Arthur & Vassilvitskii 2007): the first centre uniformly, every next
/// one with probability proportional to the squared distance to the nearest chosen centre.
fn seed_centroids(points: &[&[f64]], k: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let n = points.len();
    let mut centroids = vec![points[rng.random_range(0..n)].to_vec()];
    let mut d: Vec<f64> = points.iter().map(|p| dist2(p, &centroids[0])).collect();
    while centroids.len() < k {
        let total: f64 = d.iter().sum();
        let next = if total > 0.0 {
            let mut r = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, &di) in d.iter().enumerate() {
                if r < di {
                    pick = i;
                    break;
                }
                r -= di;
            }
            pick
        } else {
            rng.random_range(0..n)
        };
        centroids.push(points[next].to_vec());
        let c = centroids.last().expect("just pushed");
        for (di, p) in d.iter_mut().zip(points) {
            *di = di.min(dist2(p, c));
        }
    }
    centroids
}

/// Lloyd iterations from one seeding until the assignment stops changing (at most
/// `max_iter`). An emptied cluster takes the point farthest from its centroid.
fn lloyd(points: &[&[f64]], mut centroids: Vec<Vec<f64>>, max_iter: usize) -> KMeans {
    let (n, k, dim) = (points.len(), centroids.len(), points[0].len());
    let mut labels = vec![usize::MAX; n];
    for _ in 0..max_iter {
        let mut changed = false;
        for (l, p) in labels.iter_mut().zip(points) {
            let j = nearest(&centroids, p);
            changed |= *l != j;
            *l = j;
        }
        if !changed {
            break;
        }
        let mut sums = vec![vec![0.0; dim]; k];
        let mut counts = vec![0usize; k];
        for (&l, p) in labels.iter().zip(points) {
            counts[l] += 1;
            for (s, v) in sums[l].iter_mut().zip(p.iter()) {
                *s += v;
            }
        }
        for j in 0..k {
            if counts[j] > 0 {
                centroids[j] = sums[j].iter().map(|s| s / counts[j] as f64).collect();
            } else {
                let far = (0..n)
                    .max_by(|&a, &b| {
                        let da = dist2(points[a], &centroids[labels[a]]);
                        let db = dist2(points[b], &centroids[labels[b]]);
                        da.total_cmp(&db)
                    })
                    .expect("n ≥ k ≥ 1");
                centroids[j] = points[far].to_vec();
                labels[far] = j;
            }
        }
    }
    let inertia = labels
        .iter()
        .zip(points)
        .map(|(&l, p)| dist2(p, &centroids[l]))
        .sum();
    KMeans {
        centroids,
        labels,
        inertia,
    }
}

/// K-means of `points` (`n × dim`, every row the same length) into `k` clusters: `restarts`
/// k-means++ seedings from `seed`, Lloyd's algorithm from each (≤ 100 iterations), the run
/// with the lowest inertia kept. Errors if there are fewer points than clusters.
pub fn kmeans(points: &[Vec<f64>], k: usize, restarts: usize, seed: u64) -> anyhow::Result<KMeans> {
    if k == 0 {
        anyhow::bail!("k-means: the number of clusters must be ≥ 1");
    }
    if points.len() < k {
        anyhow::bail!(
            "k-means: {} point(s) for {k} clusters — survey more training samples or use fewer \
             pseudo-domains",
            points.len()
        );
    }
    let dim = points[0].len();
    if let Some(bad) = points.iter().position(|p| p.len() != dim) {
        anyhow::bail!(
            "k-means: row {bad} has {} values, row 0 has {dim}",
            points[bad].len()
        );
    }
    let rows: Vec<&[f64]> = points.iter().map(Vec::as_slice).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<KMeans> = None;
    for _ in 0..restarts.max(1) {
        let init = seed_centroids(&rows, k, &mut rng);
        let r = lloyd(&rows, init, 100);
        if best.as_ref().is_none_or(|b| r.inertia < b.inertia) {
            best = Some(r);
        }
    }
    Ok(best.expect("at least one restart"))
}

/// Kuhn–Munkres (Hungarian algorithm, O(n³) with row/column potentials) for a square cost
/// matrix: returns `assign[row] = column` minimising `Σ cost[row][assign[row]]`.
pub fn kuhn_munkres(cost: &[Vec<f64>]) -> Vec<usize> {
    let n = cost.len();
    assert!(
        cost.iter().all(|r| r.len() == n),
        "kuhn_munkres needs a square matrix"
    );
    // 1-based arrays; column 0 is the virtual start.
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let mut p = vec![0usize; n + 1]; // p[col] = row matched to col
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assign = vec![0; n];
    for j in 1..=n {
        if p[j] > 0 {
            assign[p[j] - 1] = j - 1;
        }
    }
    assign
}

/// The permutation `perm[new_id] = old_id` of `k` cluster ids that maximises the agreement
/// of `new` with `prev` (same samples, same order): Kuhn–Munkres on the negated contingency
/// table. Relabelling `new` through it keeps pseudo-domain ids stable between epochs.
pub fn align_labels(prev: &[usize], new: &[usize], k: usize) -> Vec<usize> {
    let mut cost = vec![vec![0.0; k]; k];
    for (&a, &b) in new.iter().zip(prev) {
        if a < k && b < k {
            cost[a][b] -= 1.0;
        }
    }
    kuhn_munkres(&cost)
}

/// Normalised mutual information of two labellings of the same samples,
/// `NMI = 2·I(A;B) / (H(A) + H(B))` (arithmetic-mean normalisation, natural log). 1 for
/// identical partitions up to renaming; 1 also when both are a single cluster; 0 for
/// independent ones.
pub fn nmi(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "nmi: labellings of different lengths");
    let n = a.len() as f64;
    if a.is_empty() {
        return 1.0;
    }
    let ka = a.iter().max().map_or(0, |m| m + 1);
    let kb = b.iter().max().map_or(0, |m| m + 1);
    let mut joint = vec![vec![0.0; kb]; ka];
    let (mut pa, mut pb) = (vec![0.0; ka], vec![0.0; kb]);
    for (&x, &y) in a.iter().zip(b) {
        joint[x][y] += 1.0 / n;
        pa[x] += 1.0 / n;
        pb[y] += 1.0 / n;
    }
    let h = |p: &[f64]| -> f64 {
        -p.iter()
            .filter(|&&v| v > 0.0)
            .map(|v| v * v.ln())
            .sum::<f64>()
    };
    let (ha, hb) = (h(&pa), h(&pb));
    let mut mi = 0.0;
    for (x, row) in joint.iter().enumerate() {
        for (y, &pxy) in row.iter().enumerate() {
            if pxy > 0.0 {
                mi += pxy * (pxy / (pa[x] * pb[y])).ln();
            }
        }
    }
    if ha + hb <= 0.0 {
        return 1.0;
    }
    (2.0 * mi / (ha + hb)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    /// Three well separated blobs of 20 points in 2-D.
    fn blobs(seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut pts = Vec::new();
        let mut truth = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for _ in 0..20 {
                pts.push(vec![
                    centre[0] + rng.random_range(-1.0..1.0),
                    centre[1] + rng.random_range(-1.0..1.0),
                ]);
                truth.push(c);
            }
        }
        (pts, truth)
    }

    #[test]
    fn kmeans_recovers_separable_clusters() {
        for seed in 0..5 {
            let (pts, truth) = blobs(seed);
            let r = kmeans(&pts, 3, 2, seed).unwrap();
            assert_eq!(nmi(&r.labels, &truth), 1.0, "seed {seed}");
            // Every centroid within 1 of a true centre.
            for c in &r.centroids {
                let d = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]
                    .iter()
                    .map(|t| dist2(c, t))
                    .fold(f64::INFINITY, f64::min);
                assert!(d < 1.0, "{c:?}");
            }
        }
    }

    #[test]
    fn kmeans_is_deterministic_per_seed() {
        let (pts, _) = blobs(7);
        assert_eq!(
            kmeans(&pts, 4, 3, 11).unwrap(),
            kmeans(&pts, 4, 3, 11).unwrap()
        );
    }

    #[test]
    fn kmeans_refuses_too_few_points() {
        let e = kmeans(&[vec![0.0], vec![1.0]], 3, 1, 0).unwrap_err();
        assert!(e.to_string().contains("2 point(s) for 3 clusters"), "{e}");
    }

    #[test]
    fn kmeans_on_duplicates_does_not_panic() {
        let pts = vec![vec![1.0, 1.0]; 5];
        let r = kmeans(&pts, 3, 2, 0).unwrap();
        assert_eq!(r.inertia, 0.0);
    }

    #[test]
    fn kuhn_munkres_known_answer() {
        // Optimum: row0→col1 (1), row1→col0 (2), row2→col2 (2) = 5.
        let cost = vec![
            vec![4.0, 1.0, 3.0],
            vec![2.0, 0.0, 5.0],
            vec![3.0, 2.0, 2.0],
        ];
        assert_eq!(kuhn_munkres(&cost), vec![1, 0, 2]);
    }

    #[test]
    fn permuted_labels_map_back() {
        let prev = vec![0, 0, 1, 1, 2, 2, 2, 0];
        let perm = [2usize, 0, 1]; // new = perm[prev]
        let new: Vec<usize> = prev.iter().map(|&l| perm[l]).collect();
        let back = align_labels(&prev, &new, 3);
        let relabelled: Vec<usize> = new.iter().map(|&l| back[l]).collect();
        assert_eq!(relabelled, prev);
    }

    #[test]
    fn nmi_known_answers() {
        assert_eq!(nmi(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
        assert!(nmi(&[0, 1, 0, 1], &[0, 0, 1, 1]).abs() < 1e-12);
        // Worked by hand: I = ½ln(4/3) + ¼ln(2/3) + ¼ln 2 = 0.215762, H(A) = ln 2,
        // H(B) = −(¾ln¾ + ¼ln¼) = 0.562335 → 2I / (H(A) + H(B)) = 0.343711.
        let v = nmi(&[0, 0, 1, 1], &[0, 0, 0, 1]);
        assert!((v - 0.343_711).abs() < 1e-6, "{v}");
    }

    proptest! {
        /// The Hungarian assignment is a permutation and no transposition improves it.
        #[test]
        fn kuhn_munkres_is_optimal(vals in proptest::collection::vec(0.0f64..10.0, 16)) {
            let cost: Vec<Vec<f64>> = vals.chunks(4).map(<[f64]>::to_vec).collect();
            let a = kuhn_munkres(&cost);
            let mut seen = a.clone();
            seen.sort();
            prop_assert_eq!(seen, vec![0, 1, 2, 3]);
            let total = |a: &[usize]| -> f64 { a.iter().enumerate().map(|(r, &c)| cost[r][c]).sum() };
            // Exhaustive optimum over all 24 permutations.
            let mut best = f64::INFINITY;
            for p in 0..24usize {
                let mut items = vec![0, 1, 2, 3];
                let mut perm = Vec::new();
                let mut code = p;
                for m in (1..=4).rev() {
                    perm.push(items.remove(code % m));
                    code /= m;
                }
                best = best.min(total(&perm));
            }
            prop_assert!((total(&a) - best).abs() < 1e-9);
        }

        /// NMI is symmetric and in [0, 1].
        #[test]
        fn nmi_symmetric_bounded(a in proptest::collection::vec(0usize..4, 1..40), seed in 0u64..100) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let b: Vec<usize> = a.iter().map(|_| rng.random_range(0..3)).collect();
            let (x, y) = (nmi(&a, &b), nmi(&b, &a));
            prop_assert!((x - y).abs() < 1e-12);
            prop_assert!((0.0..=1.0).contains(&x));
        }
    }
}
