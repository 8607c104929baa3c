//! The dashboard's hourly bar charts, drawn on the server (the CSP allows no script): bars in an
//! SVG that stretches to its card, and the scale and labels as HTML text beside it, so they
//! stay readable at any width.

/// Hourly columns over the SVG's 240 × 100 view box: 10 units per hour.
const HOUR_WIDTH: u32 = 10;
const HEIGHT: u32 = 100;

pub struct Bar {
    pub x: u32,
    pub w: u32,
    pub ok: u64,
    pub fail: u64,
    pub ok_y: u32,
    pub ok_h: u32,
    pub fail_y: u32,
    pub fail_h: u32,
    pub label: String,
}

/// 24 stacked bars (successes below, failures above) with a y-scale of 0, half and top.
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
    /// Scale labels, top first: the top, the middle and 0.
    pub scale: [u64; 3],
    /// For screen readers: the totals in words.
    pub summary: String,
}

impl Chart {
    /// `hours` oldest first, each `(successes, failures)`; the last is the current hour.
    pub fn hourly(hours: &[(u64, u64)], summary: String) -> Chart {
        let top = nice_top(hours.iter().map(|(ok, fail)| ok + fail).max().unwrap_or(0));
        let scale = |n: u64| ((n as f64 / top as f64) * f64::from(HEIGHT)).round() as u32;
        let count = hours.len() as u32;
        let bars = hours
            .iter()
            .enumerate()
            .map(|(i, &(ok, fail))| {
                let ok_h = scale(ok);
                let fail_h = scale(fail);
                let hours_ago = count - 1 - i as u32;
                Bar {
                    x: i as u32 * HOUR_WIDTH + 1,
                    w: HOUR_WIDTH - 2,
                    ok,
                    fail,
                    ok_y: HEIGHT - ok_h,
                    ok_h,
                    fail_y: HEIGHT - ok_h - fail_h,
                    fail_h,
                    label: match hours_ago {
                        0 => "this hour".into(),
                        1 => "1 hour ago".into(),
                        n => format!("{n} hours ago"),
                    },
                }
            })
            .collect();
        Chart {
            width: count * HOUR_WIDTH,
            height: HEIGHT,
            bars,
            scale: [top, top / 2, 0],
            summary,
        }
    }
}

/// The smallest of 2, 4, 10, 20, 40, 100, … at or above `max`: an even top, so the middle
/// label is a whole number.
fn nice_top(max: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for step in [2, 4, 10] {
            if step * unit >= max {
                return step * unit;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_has_an_even_top_at_or_above_the_tallest_bar() {
        for (max, top) in [
            (0, 2),
            (1, 2),
            (3, 4),
            (5, 10),
            (11, 20),
            (21, 40),
            (41, 100),
            (250, 400),
        ] {
            assert_eq!(nice_top(max), top, "{max}");
        }
    }

    #[test]
    fn bars_span_the_view_box_and_stack_failures_on_successes() {
        let mut hours = vec![(0, 0); 24];
        hours[23] = (3, 1);
        let chart = Chart::hourly(&hours, String::new());
        assert_eq!(chart.width, 240);
        assert_eq!(chart.scale, [4, 2, 0]);
        let last = &chart.bars[23];
        assert_eq!((last.ok_h, last.fail_h), (75, 25));
        assert_eq!(last.fail_y + last.fail_h, last.ok_y);
        assert_eq!(last.x + last.w + 1, chart.width);
        assert_eq!(chart.bars[0].label, "23 hours ago");
    }
}
