package collector

import (
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// MetricsFromPrometheus converts the gateway's Prometheus series into OTLP metrics, keeping
// the series keep accepts (by their labels): counters become cumulative monotonic sums,
// gauges gauges, histograms exponential histograms when they carry native buckets (the same
// 10 % buckets a scrape sees) and explicit-bucket histograms otherwise. start is when the
// counters started (the process), now the time of the points; resource labels the source.
func MetricsFromPrometheus(fams []*dto.MetricFamily, keep func(labels map[string]string) bool, resource map[string]string, start, now time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	for k, v := range resource {
		rm.Resource().Attributes().PutStr(k, v)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("apoxy.dev/gateway")
	ts, st := pcommon.NewTimestampFromTime(now), pcommon.NewTimestampFromTime(start)
	for _, f := range fams {
		var m pmetric.Metric
		made := false
		for _, pm := range f.Metric {
			labels := make(map[string]string, len(pm.Label))
			for _, l := range pm.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if keep != nil && !keep(labels) {
				continue
			}
			if !made {
				m = sm.Metrics().AppendEmpty()
				m.SetName(f.GetName())
				m.SetDescription(f.GetHelp())
				made = true
				switch f.GetType() {
				case dto.MetricType_COUNTER:
					s := m.SetEmptySum()
					s.SetIsMonotonic(true)
					s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				case dto.MetricType_HISTOGRAM:
					if native(pm.GetHistogram()) {
						m.SetEmptyExponentialHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					} else {
						m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					}
				default:
					m.SetEmptyGauge()
				}
			}
			var attrs pcommon.Map
			switch m.Type() {
			case pmetric.MetricTypeSum:
				dp := m.Sum().DataPoints().AppendEmpty()
				dp.SetStartTimestamp(st)
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(pm.GetCounter().GetValue())
				attrs = dp.Attributes()
			case pmetric.MetricTypeGauge:
				dp := m.Gauge().DataPoints().AppendEmpty()
				dp.SetTimestamp(ts)
				switch {
				case pm.Gauge != nil:
					dp.SetDoubleValue(pm.GetGauge().GetValue())
				case pm.Untyped != nil:
					dp.SetDoubleValue(pm.GetUntyped().GetValue())
				case pm.Summary != nil:
					dp.SetDoubleValue(pm.GetSummary().GetSampleSum())
				}
				attrs = dp.Attributes()
			case pmetric.MetricTypeHistogram:
				h := pm.GetHistogram()
				dp := m.Histogram().DataPoints().AppendEmpty()
				dp.SetStartTimestamp(st)
				dp.SetTimestamp(ts)
				dp.SetCount(h.GetSampleCount())
				dp.SetSum(h.GetSampleSum())
				var prev uint64
				for _, b := range h.Bucket {
					dp.ExplicitBounds().Append(b.GetUpperBound())
					dp.BucketCounts().Append(b.GetCumulativeCount() - prev)
					prev = b.GetCumulativeCount()
				}
				dp.BucketCounts().Append(h.GetSampleCount() - prev) // +Inf
				attrs = dp.Attributes()
			case pmetric.MetricTypeExponentialHistogram:
				h := pm.GetHistogram()
				dp := m.ExponentialHistogram().DataPoints().AppendEmpty()
				dp.SetStartTimestamp(st)
				dp.SetTimestamp(ts)
				dp.SetCount(h.GetSampleCount())
				dp.SetSum(h.GetSampleSum())
				dp.SetScale(h.GetSchema())
				dp.SetZeroCount(h.GetZeroCount())
				dp.SetZeroThreshold(h.GetZeroThreshold())
				setBuckets(dp.Positive(), h.PositiveSpan, h.PositiveDelta)
				setBuckets(dp.Negative(), h.NegativeSpan, h.NegativeDelta)
				attrs = dp.Attributes()
			}
			for k, v := range labels {
				attrs.PutStr(k, v)
			}
		}
	}
	return md
}

func native(h *dto.Histogram) bool {
	return h != nil && (len(h.PositiveSpan) > 0 || len(h.NegativeSpan) > 0 || h.GetZeroThreshold() > 0) && h.Schema != nil
}

// setBuckets lays Prometheus's sparse native buckets (spans of consecutive indexes, counts as
// deltas) out as OTLP's dense ones. Prometheus bucket i covers (base^(i-1), base^i], OTLP
// bucket k covers (base^k, base^(k+1)]: k = i-1.
func setBuckets(b pmetric.ExponentialHistogramDataPointBuckets, spans []*dto.BucketSpan, deltas []int64) {
	if len(spans) == 0 {
		return
	}
	first := spans[0].GetOffset()
	b.SetOffset(first - 1)
	di := 0
	var count int64
	for si, sp := range spans {
		if si > 0 { // the gap since the last span: empty buckets
			for range sp.GetOffset() {
				b.BucketCounts().Append(0)
			}
		}
		for range sp.GetLength() {
			if di < len(deltas) {
				count += deltas[di]
			}
			di++
			b.BucketCounts().Append(uint64(max(count, 0)))
		}
	}
}
