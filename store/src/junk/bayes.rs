//! The spam probability of a message from per-token counts: Robinson's smoothed token
//! probabilities combined with Fisher's chi-square method, as in SpamBayes ("chi2 combining")
//! and mox's junk filter. Pure: no I/O.

/// How often one token was seen in trained spam and ham.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Spam messages containing the token.
    pub spam: i64,
    /// Ham messages containing the token.
    pub ham: i64,
}

/// Robinson's `s`: how strongly the prior pulls rarely seen tokens towards `x`.
const STRENGTH: f64 = 0.45;

/// Robinson's `x`: the probability assumed for an unseen token.
const UNKNOWN: f64 = 0.5;

/// Tokens whose probability is closer to 0.5 than this say nothing and are left out.
const MIN_DISTANCE: f64 = 0.1;

/// Most tokens (the most telling ones) combined for one message.
const MAX_CLUES: usize = 150;

/// The smoothed spam probability of one token (Robinson's f(w)), given how many spam and ham
/// messages were trained in all.
pub fn token_probability(c: TokenCounts, total_spam: i64, total_ham: i64) -> f64 {
    let spam_ratio = c.spam as f64 / total_spam.max(1) as f64;
    let ham_ratio = c.ham as f64 / total_ham.max(1) as f64;
    let n = (c.spam + c.ham) as f64;
    if spam_ratio + ham_ratio == 0.0 {
        return UNKNOWN;
    }
    let p = spam_ratio / (spam_ratio + ham_ratio);
    (STRENGTH * UNKNOWN + n * p) / (STRENGTH + n)
}

/// The probability (0 to 1) that a message with tokens of these counts is spam: 0.5 when
/// nothing telling is known.
pub fn spam_probability(counts: &[TokenCounts], total_spam: i64, total_ham: i64) -> f64 {
    let mut clues: Vec<f64> = counts
        .iter()
        .map(|&c| token_probability(c, total_spam, total_ham))
        .filter(|p| (p - 0.5).abs() >= MIN_DISTANCE)
        .collect();
    clues.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    clues.truncate(MAX_CLUES);
    if clues.is_empty() {
        return 0.5;
    }
    let n = clues.len();
    // Clamp so that ln never sees 0.
    let (mut ln_spam, mut ln_ham) = (0.0, 0.0);
    for p in &clues {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        ln_ham += p.ln();
        ln_spam += (1.0 - p).ln();
    }
    let s = 1.0 - chi2_q(-2.0 * ln_spam, 2 * n);
    let h = 1.0 - chi2_q(-2.0 * ln_ham, 2 * n);
    ((s - h + 1.0) / 2.0).clamp(0.0, 1.0)
}

/// The probability that a chi-square variable with `v` (even) degrees of freedom exceeds `x2`.
fn chi2_q(x2: f64, v: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(spam: i64, ham: i64) -> TokenCounts {
        TokenCounts { spam, ham }
    }

    #[test]
    fn probabilities() {
        assert_eq!(token_probability(c(0, 0), 10, 10), 0.5);
        assert!(token_probability(c(10, 0), 10, 10) > 0.95);
        assert!(token_probability(c(0, 10), 10, 10) < 0.05);
        assert!(token_probability(c(1, 0), 10, 10) < token_probability(c(9, 0), 10, 10));
        assert_eq!(spam_probability(&[], 10, 10), 0.5);
        assert_eq!(spam_probability(&[c(5, 5)], 10, 10), 0.5);
        let spammy = vec![c(40, 1); 30];
        let hammy = vec![c(1, 40); 30];
        assert!(spam_probability(&spammy, 50, 50) > 0.99);
        assert!(spam_probability(&hammy, 50, 50) < 0.01);
        let mixed: Vec<TokenCounts> = spammy.iter().chain(&hammy).copied().collect();
        let p = spam_probability(&mixed, 50, 50);
        assert!((0.3..0.7).contains(&p), "{p}");
        assert!((chi2_q(0.0, 4) - 1.0).abs() < 1e-12);
        assert!(chi2_q(1000.0, 2) < 1e-100);
    }
}
