//! The live source: the event stream consumer (leader only: it runs with
//! the controllers) and the per-set windows it fills. What a set's
//! evaluation takes from a window (the live block of status and, under a
//! policy with `spec.breaker`, the live levels) is pure and lives in
//! `domain::reputation::live_view`.
//!
//! The consumer long-polls each streaming account's queue (batches of 10),
//! counts, then deletes the batch. It adds pollers while batches come back
//! full, up to [`MAX_POLLERS`] per queue, and drops back to one when the
//! queue is drained. A set is re-evaluated at once when its live verdict
//! changes, otherwise at most every [`REFRESH`] while events arrive: the
//! breaker acts within seconds without a status write per event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use parking_lot::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use super::Shared;
use super::live_checkpoint::{self, Checkpointer};
use crate::api::{ConfigurationSet, conditions};
use crate::aws::sqs::Received;
use crate::aws::{AccountKey, ErrorKind, NOT_LEADER};
use crate::domain::reputation::checkpoint;
use crate::domain::reputation::live_view::{self, LiveView};
use crate::domain::reputation::windows::{self as window, Summary, Window};
use crate::domain::reputation::{self as rep, Level};
use crate::index::Index as Stores;
use crate::index::account_key;

/// Pollers per queue at most (each holds one long poll open).
pub const MAX_POLLERS: usize = 8;
/// Long-poll wait: below the SDK's 20 s attempt timeout.
const WAIT_SECONDS: i32 = 10;
/// While events arrive, a set's status is refreshed at most this often
/// unless its live verdict changes.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Longest wait between failed receives.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Per set: last trigger, the verdict it carried, and whether events
/// arrived since.
type Triggers = HashMap<String, (Instant, Option<Level>, bool)>;
/// (SesAccount, AWS set name) -> the object whose events they are.
type Index = HashMap<(String, String), Owner>;

/// The ConfigurationSet object an AWS set's events count for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owner {
    namespace: String,
    name: String,
    /// Its status records the AWS set (an ARN: created, or adopted with
    /// the owner tag checked).
    recorded: bool,
}

impl Owner {
    fn key(&self) -> String {
        set_key(&self.namespace, &self.name)
    }
}

/// Whose events each AWS set's are. Several objects may name the same set
/// (another tenant's object is Stalled `AlreadyExists`): the one whose
/// status records the set wins. Without one (events before the first
/// status write), the only object naming it; two such objects get
/// neither, since a wrong guess would blind the owner's breaker. Pure.
fn owners<'a>(sets: impl IntoIterator<Item = (String, &'a ConfigurationSet)>) -> Index {
    let mut candidates: HashMap<(String, String), Vec<Owner>> = HashMap::new();
    for (account, cs) in sets {
        if refused_as_not_ours(cs) {
            continue;
        }
        let recorded = cs.status.as_ref().is_some_and(|s| s.arn.is_some());
        candidates.entry((account, cs.aws_name())).or_default().push(Owner {
            namespace: cs.namespace().unwrap_or_default(),
            name: cs.name_any(),
            recorded,
        });
    }
    candidates
        .into_iter()
        .filter_map(|(key, found)| {
            let mut recorded = found.iter().filter(|o| o.recorded);
            let owner = match (recorded.next(), recorded.next()) {
                (Some(one), None) => one.clone(),
                // Two objects both recording one set: not a state the
                // owner tag allows; count for neither rather than guess.
                (Some(_), Some(_)) => return None,
                (None, _) if found.len() == 1 => found[0].clone(),
                (None, _) => return None,
            };
            Some((key, owner))
        })
        .collect()
}

/// The object is Stalled because the AWS set is someone else's.
fn refused_as_not_ours(cs: &ConfigurationSet) -> bool {
    let conditions = cs.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    conditions::status_of(conditions, conditions::STALLED)
        .is_some_and(|c| c.status == "True" && matches!(c.reason.as_str(), "AlreadyExists" | "AdoptionNotAllowed"))
}

/// Whether a mapped owner is still in the cache, not refused the set since,
/// and still records the set if that is what made it the owner.
fn still_owns(ctx: &Shared, owner: &Owner) -> bool {
    let cached = ctx
        .index
        .sets
        .get(&ObjectRef::new(&owner.name).within(&owner.namespace));
    cached.is_some_and(|cs| {
        !refused_as_not_ours(&cs) && (!owner.recorded || cs.status.as_ref().is_some_and(|s| s.arn.is_some()))
    })
}

/// How often an account's live counts are shown while events flow.
const ACCOUNT_REFRESH: Duration = Duration::from_secs(5);

/// Per-set windows and the consumer's counters.
pub struct LiveState {
    windows: Mutex<HashMap<String, Window>>,
    /// When this instance started counting (a restart starts empty).
    started: Timestamp,
    /// Per set: last trigger, the verdict it carried, and whether events
    /// arrived since.
    triggers: Mutex<Triggers>,
    /// (SesAccount, AWS set name) -> set key, rebuilt from the cache when
    /// a name is missing (at most once per batch, so foreign messages
    /// cannot make every message scan the cache).
    index: Mutex<Index>,
    pub consumed: AtomicU64,
    pub malformed: AtomicU64,
    pub foreign: AtomicU64,
    /// Unix milliseconds of the newest event counted (its send time).
    newest_ms: AtomicU64,
    /// Moves with every batch that counted something: a checkpoint is
    /// written only when it moved since the last one.
    generation: AtomicU64,
    /// When each account was last asked to show its live counts.
    account_shown: Mutex<HashMap<String, Instant>>,
}

impl Default for LiveState {
    fn default() -> Self {
        Self {
            windows: Default::default(),
            started: Timestamp::now(),
            triggers: Default::default(),
            index: Default::default(),
            consumed: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            newest_ms: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            account_shown: Default::default(),
        }
    }
}

fn set_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl LiveState {
    /// A set's live window over its breaker's window (see
    /// [`live_view::window`]), when its SesAccount streams events.
    pub fn summary_of(
        &self,
        cs: &ConfigurationSet,
        index: &Stores,
        breaker: Option<live_view::Breaker>,
        now: Timestamp,
    ) -> Option<Summary> {
        index.stream_topic(index.account_name(cs.spec.account_ref.as_deref()))?;
        Some(self.summary(
            &cs.namespace().unwrap_or_default(),
            &cs.name_any(),
            live_view::window(breaker).as_secs(),
            now,
        ))
    }

    fn windows(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock()
    }

    /// The window of a set (an empty one, counting since start-up, when no
    /// event came yet).
    pub fn summary(&self, namespace: &str, name: &str, window_secs: u64, now: Timestamp) -> Summary {
        match self.windows().get_mut(&set_key(namespace, name)) {
            Some(w) => w.summary(window_secs, now),
            None => Window::new(self.started).summary(window_secs, now),
        }
    }

    /// The live window of a whole account: its sets' windows added up
    /// (`None`: the account has no set).
    pub fn account_summary(&self, sets: &[Arc<ConfigurationSet>], window_secs: u64, now: Timestamp) -> Option<Summary> {
        let parts: Vec<Summary> = sets
            .iter()
            .map(|cs| self.summary(&cs.namespace().unwrap_or_default(), &cs.name_any(), window_secs, now))
            .collect();
        Summary::merge(&parts)
    }

    /// After a batch counted events of `account`: its SesAccount shows
    /// the account-level live rate and may trip the account breaker, so it
    /// is re-evaluated, at most every [`ACCOUNT_REFRESH`] (a status write
    /// per batch would cost the API server more than the rate is worth).
    /// Counts that arrive within that time are shown by one trigger at its
    /// end, so the last batch is never left unshown.
    pub fn account_counted(&self, ctx: &Shared, account: &str) {
        let now = Instant::now();
        let wait = {
            let mut shown = self.account_shown.lock();
            match shown.get(account) {
                // A trigger is already due at that time: it shows these too.
                Some(at) if *at > now => return,
                Some(at) if now.duration_since(*at) < ACCOUNT_REFRESH => {
                    let due = *at + ACCOUNT_REFRESH;
                    shown.insert(account.to_string(), due);
                    Some(due - now)
                }
                _ => {
                    shown.insert(account.to_string(), now);
                    None
                }
            }
        };
        let trigger = {
            let ctx = ctx.clone();
            let account = account.to_string();
            async move {
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                if let Some(a) = ctx.index.accounts.get(&ObjectRef::new(&account)) {
                    ctx.rates.trigger_account(&a);
                }
            }
        };
        tokio::spawn(trigger);
    }

    /// A deleted set's window and trigger memory.
    pub fn forget(&self, namespace: &str, name: &str) {
        let key = set_key(namespace, name);
        self.windows().remove(&key);
        self.triggers.lock().remove(&key);
    }

    /// Sets with a window, and the bytes the windows hold.
    pub fn footprint(&self) -> (usize, usize) {
        let windows = self.windows();
        (windows.len(), windows.values().map(Window::bytes).sum())
    }

    /// Age of the newest event counted, if any.
    pub fn newest_event_age(&self) -> Option<Duration> {
        let ms = self.newest_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| {
            let now = Timestamp::now().as_millisecond().max(0) as u64;
            Duration::from_millis(now.saturating_sub(ms))
        })
    }

    /// The set key an event of `aws_name` in `account` counts for. The
    /// mapping is rebuilt from the cache (at most once per batch, so
    /// foreign messages cannot make every message scan the cache) when it
    /// has no entry or its entry went stale: the object was deleted, or
    /// lost the record that made it the owner.
    fn lookup(&self, ctx: &Shared, account: &str, aws_name: &str, rebuilt: &mut bool) -> Option<String> {
        let mut index = self.index.lock();
        let key = (account.to_string(), aws_name.to_string());
        if let Some(owner) = index.get(&key)
            && still_owns(ctx, owner)
        {
            return Some(owner.key());
        }
        if *rebuilt {
            return None;
        }
        *rebuilt = true;
        let sets = ctx.index.sets.state();
        *index = owners(sets.iter().map(|cs| {
            let account = ctx.index.account_name(cs.spec.account_ref.as_deref()).to_string();
            (account, &**cs)
        }));
        index.get(&key).map(Owner::key)
    }

    /// Counts one batch; returns the sets it touched. Messages that do not
    /// parse or name a set this operator does not manage in that account
    /// are counted and dropped (deleted like the rest).
    pub fn count(&self, ctx: &Shared, account: &str, account_id: &str, messages: &[Received]) -> HashSet<String> {
        let now = Timestamp::now();
        let (mut malformed, mut foreign) = (0u64, 0u64);
        let mut rebuilt = false;
        let mut events = Vec::with_capacity(messages.len());
        for m in messages {
            let event = match window::parse(&m.body) {
                Ok(e) => e,
                Err(e) => {
                    // The body may hold addresses: only the reason is logged.
                    tracing::debug!(account, reason = %e, "dropped a malformed stream message");
                    malformed += 1;
                    continue;
                }
            };
            if event.account_id.as_deref().is_some_and(|id| id != account_id) {
                foreign += 1;
                continue;
            }
            let Some(key) = self.lookup(ctx, account, &event.set, &mut rebuilt) else {
                foreign += 1;
                continue;
            };
            events.push((key, event));
        }
        let mut touched = HashSet::new();
        let mut counted = 0u64;
        let mut newest: Option<Timestamp> = None;
        {
            let mut map = self.windows();
            for (key, event) in events {
                let w = map.entry(key.clone()).or_insert_with(|| Window::new(self.started));
                if w.add(&event, now) {
                    counted += 1;
                    newest = newest.max(event.sent_at);
                    touched.insert(key);
                } else {
                    // Older than the longest window: nothing to count it in.
                    malformed += 1;
                }
            }
        }
        if counted > 0 {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        self.consumed.fetch_add(counted, Ordering::Relaxed);
        self.malformed.fetch_add(malformed, Ordering::Relaxed);
        self.foreign.fetch_add(foreign, Ordering::Relaxed);
        ctx.metrics.stream_events("counted", counted);
        ctx.metrics.stream_events("malformed", malformed);
        ctx.metrics.stream_events("foreign", foreign);
        if let Some(at) = newest {
            self.newest_ms
                .fetch_max(at.as_millisecond().max(0) as u64, Ordering::Relaxed);
            ctx.metrics.stream_newest(at.as_millisecond() as f64 / 1000.0);
        }
        touched
    }

    /// Each counted set's window as a checkpoint entry, with its sends
    /// over the last hour. Sets no longer cached are left out.
    fn checkpoint_entries(&self, ctx: &Shared, now: Timestamp) -> Vec<(checkpoint::Entry, u32)> {
        let mut windows = self.windows();
        windows
            .iter_mut()
            .filter_map(|(key, w)| {
                let (ns, name) = key.split_once('/')?;
                let uid = ctx.index.sets.get(&ObjectRef::new(name).within(ns))?.uid()?;
                let sends = w.recent_sends(now);
                let window = w.snapshot(now)?;
                Some((
                    checkpoint::Entry {
                        key: key.clone(),
                        uid,
                        window,
                    },
                    sends,
                ))
            })
            .collect()
    }

    /// Takes the windows of a checkpoint for the sets still cached under
    /// the same uid; returns how many.
    fn restore(&self, ctx: &Shared, document: &checkpoint::Document, now: Timestamp) -> usize {
        let mut windows = self.windows();
        let mut restored = 0;
        for entry in &document.sets {
            let Some((ns, name)) = entry.key.split_once('/') else {
                continue;
            };
            let same_object = ctx
                .index
                .sets
                .get(&ObjectRef::new(name).within(ns))
                .is_some_and(|cs| cs.uid().as_deref() == Some(entry.uid.as_str()));
            if same_object {
                windows.insert(entry.key.clone(), Window::restore(&entry.window, now));
                restored += 1;
            }
        }
        restored
    }

    /// Re-evaluates the touched sets whose verdict changed, or that were
    /// not refreshed for [`REFRESH`]; the rest are marked for [`Self::flush`].
    fn after_batch(&self, ctx: &Shared, touched: HashSet<String>) {
        for key in touched {
            let Some((ns, name)) = key.split_once('/') else {
                continue;
            };
            let Some(cs) = ctx.index.sets.get(&ObjectRef::new(name).within(ns)) else {
                continue;
            };
            let verdict = verdict(&cs, ctx);
            let mut triggers = self.triggers.lock();
            let due = match triggers.get(&key) {
                None => true,
                Some((at, last, _)) => *last != verdict || at.elapsed() >= REFRESH,
            };
            if due {
                triggers.insert(key, (Instant::now(), verdict, false));
                drop(triggers);
                ctx.rates.trigger_set(&cs);
            } else if let Some(entry) = triggers.get_mut(&key) {
                entry.2 = true;
            }
        }
    }

    /// Triggers sets with counts not yet shown, once [`REFRESH`] passed.
    fn flush(&self, ctx: &Shared) {
        let due: Vec<String> = {
            let mut triggers = self.triggers.lock();
            triggers
                .iter_mut()
                .filter(|(_, (at, _, dirty))| *dirty && at.elapsed() >= REFRESH)
                .map(|(k, entry)| {
                    *entry = (Instant::now(), entry.1, false);
                    k.clone()
                })
                .collect()
        };
        for key in due {
            if let Some((ns, name)) = key.split_once('/')
                && let Some(cs) = ctx.index.sets.get(&ObjectRef::new(name).within(ns))
            {
                ctx.rates.trigger_set(&cs);
            }
        }
    }
}

/// A set's live verdict as the breaker sees it: its overall live level
/// (`None` without a breaker or a stream).
fn verdict(cs: &ConfigurationSet, ctx: &Shared) -> Option<Level> {
    let policies = ctx.index.policies_in(cs.namespace().as_deref());
    let selecting = rep::selecting(cs, &policies);
    let breaker = live_view::breaker(&selecting);
    let now = Timestamp::now();
    let summary = ctx.live.summary_of(cs, &ctx.index, breaker, now)?;
    LiveView::judge(summary, breaker, &rep::applied_for(&selecting), now).verdict()
}

/// Runs the consumers of every streaming account until `shutdown`.
pub async fn run_consumer(ctx: Shared, mut shutdown: impl std::future::Future<Output = ()> + Unpin) {
    // Events name sets: counting before the set cache is listed would drop
    // them as foreign.
    tokio::select! {
        _ = &mut shutdown => return,
        _ = ctx.index.synced() => {}
    }
    let mut saver = ctx.checkpoint.clone().map(Saver::new);
    if let Some(saver) = &mut saver {
        saver.restore(&ctx).await;
    }
    let mut queues: HashMap<(String, AccountKey, String), tokio::task::JoinHandle<()>> = HashMap::new();
    let mut last_refresh = Instant::now();
    loop {
        let mut wanted = HashSet::new();
        for account in ctx.index.accounts.state() {
            if !account.spec.event_stream_enabled() {
                continue;
            }
            let Some(url) = account
                .status
                .as_ref()
                .and_then(|s| s.event_stream.as_ref())
                .and_then(|s| s.queue_url.clone())
            else {
                continue;
            };
            wanted.insert((account.name_any(), account_key(&account.spec), url));
        }
        queues.retain(|k, task| {
            let keep = wanted.contains(k) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for k in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = queues.entry(k) {
                let (account, key, url) = slot.key().clone();
                let span = tracing::info_span!("consume", account = %account);
                slot.insert(tokio::spawn(consume(ctx.clone(), account, key, url).instrument(span)));
            }
        }
        ctx.live.flush(&ctx);
        if let Some(saver) = &mut saver {
            saver.save_if_due(&ctx);
        }
        // Windows slide without events too: what status shows is refreshed
        // once a minute for sets that have counts.
        if last_refresh.elapsed() >= Duration::from_secs(60) {
            last_refresh = Instant::now();
            let keys: Vec<String> = ctx.live.windows().keys().cloned().collect();
            for key in keys {
                if let Some((ns, name)) = key.split_once('/')
                    && let Some(cs) = ctx.index.sets.get(&ObjectRef::new(name).within(ns))
                {
                    ctx.rates.trigger_set(&cs);
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    for task in queues.into_values() {
        task.abort();
    }
    if let Some(saver) = saver {
        saver.last_save(&ctx).await;
    }
}

/// The checkpoint's reader and writer: at most one write in flight, and
/// one per [`live_checkpoint::EVERY`] while the counts move. Writes only
/// while the leadership fence is open, so a replica that lost the Lease
/// does not overwrite what the new leader writes.
struct Saver {
    checkpointer: Checkpointer,
    saved: u64,
    last: Instant,
    writing: Option<tokio::task::JoinHandle<()>>,
}

impl Saver {
    fn new(checkpointer: Checkpointer) -> Self {
        Self {
            checkpointer,
            saved: 0,
            last: Instant::now(),
            writing: None,
        }
    }

    /// Takes the windows the last leader wrote, before anything is counted,
    /// and re-evaluates the sets they are for.
    async fn restore(&mut self, ctx: &Shared) {
        match self.checkpointer.load().await {
            Ok(Some(document)) => {
                let restored = ctx.live.restore(ctx, &document, Timestamp::now());
                ctx.metrics.live_checkpoint("restored");
                let age = Timestamp::now().as_second() - document.written_at;
                tracing::info!(
                    sets = restored,
                    age_seconds = age,
                    "live windows restored from the checkpoint"
                );
                for entry in &document.sets {
                    if let Some((ns, name)) = entry.key.split_once('/')
                        && let Some(cs) = ctx.index.sets.get(&ObjectRef::new(name).within(ns))
                    {
                        ctx.rates.trigger_set(&cs);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                ctx.metrics.live_checkpoint("unusable");
                tracing::warn!(error = %e, "live windows start empty: the checkpoint could not be read");
            }
        }
        self.saved = ctx.live.generation.load(Ordering::Relaxed);
    }

    fn save_if_due(&mut self, ctx: &Shared) {
        let generation = ctx.live.generation.load(Ordering::Relaxed);
        let busy = self.writing.as_ref().is_some_and(|t| !t.is_finished());
        if generation == self.saved || busy || self.last.elapsed() < live_checkpoint::EVERY {
            return;
        }
        self.saved = generation;
        self.last = Instant::now();
        let (checkpointer, ctx) = (self.checkpointer.clone(), ctx.clone());
        self.writing = Some(tokio::spawn(async move {
            if !write(&checkpointer, &ctx).await {
                // Counted again on the next round.
                ctx.live.generation.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    /// On a graceful stop: what was counted since the last write.
    async fn last_save(self, ctx: &Shared) {
        if let Some(task) = self.writing {
            let _ = task.await;
        }
        if ctx.live.generation.load(Ordering::Relaxed) != self.saved {
            write(&self.checkpointer, ctx).await;
        }
    }
}

/// One checkpoint write; false when it failed or was not allowed.
async fn write(checkpointer: &Checkpointer, ctx: &Shared) -> bool {
    if !ctx.aws.fence().is_open() {
        return false;
    }
    let now = Timestamp::now();
    let entries = ctx.live.checkpoint_entries(ctx, now);
    let (document, omitted) = checkpoint::encode(entries, now.as_second(), checkpoint::MAX_BYTES);
    if omitted > 0 {
        tracing::debug!(omitted, "the live checkpoint is full: the quietest sets are left out");
    }
    match checkpointer.save(document).await {
        Ok(()) => {
            ctx.metrics.live_checkpoint("written");
            true
        }
        Err(e) => {
            ctx.metrics.live_checkpoint("failed");
            tracing::warn!(error = %e, "could not write the live checkpoint");
            false
        }
    }
}

/// The pollers of one queue: one always, more while batches come back full.
async fn consume(ctx: Shared, account: String, key: AccountKey, url: String) {
    let active = Arc::new(AtomicUsize::new(1));
    let mut extra = tokio::task::JoinSet::new();
    let (more_tx, mut more_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let primary = poll(
        ctx.clone(),
        account.clone(),
        key.clone(),
        url.clone(),
        true,
        active.clone(),
        more_tx.clone(),
    );
    tokio::pin!(primary);
    loop {
        tokio::select! {
            _ = &mut primary => break,
            Some(()) = more_rx.recv() => {
                if active.load(Ordering::Relaxed) < MAX_POLLERS {
                    active.fetch_add(1, Ordering::Relaxed);
                    extra.spawn(poll(ctx.clone(), account.clone(), key.clone(), url.clone(), false, active.clone(), more_tx.clone()));
                }
            }
            Some(_) = extra.join_next(), if !extra.is_empty() => {}
        }
    }
}

/// Waits after failed receives: 0.4 s doubling to 30 s. With jitter (each
/// wait up to twice as long): the pollers of a queue, and of every queue
/// in the region, fail together when SQS throttles or fails, and retrying
/// in step would hit it together again. The cap holds after the jitter,
/// so the longest wait stays 30 s; pollers that reached it at different
/// times stay apart.
fn receive_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(400))
        .with_factor(2.0)
        .with_max_delay(MAX_BACKOFF)
        .without_max_times()
        .with_jitter()
        .build()
        .map(|wait| wait.min(MAX_BACKOFF))
}

/// One poller: receive, count, delete, until the queue is drained (extra
/// pollers) or forever (the primary). Throttling, 5xx and transport errors
/// back off exponentially ([`receive_delays`]); nothing here ends the loop.
async fn poll(
    ctx: Shared,
    account: String,
    key: AccountKey,
    url: String,
    primary: bool,
    active: Arc<AtomicUsize>,
    more: tokio::sync::mpsc::UnboundedSender<()>,
) {
    let mut failures: u32 = 0;
    let mut delays = receive_delays();
    loop {
        let result = match ctx.aws.session(&key).await {
            Ok(session) => match session.receive_events(&url, WAIT_SECONDS).await {
                Ok(messages) => {
                    if failures > 0 {
                        failures = 0;
                        delays = receive_delays();
                    }
                    if messages.is_empty() {
                        if primary {
                            continue;
                        }
                        break;
                    }
                    if messages.len() == 10 {
                        let _ = more.send(());
                    }
                    let touched = ctx.live.count(&ctx, &account, &session.account_id, &messages);
                    let receipts: Vec<String> = messages.into_iter().map(|m| m.receipt_handle).collect();
                    match session.delete_events(&url, &receipts).await {
                        Ok(0) => {}
                        // Not deleted: they come back after the visibility
                        // timeout and count twice; rare, and never too low.
                        Ok(n) => tracing::warn!(failed = n, "SQS did not delete some stream messages"),
                        Err(e) => tracing::warn!(error = %e, "deleting stream messages failed"),
                    }
                    if !touched.is_empty() {
                        ctx.live.account_counted(&ctx, &account);
                    }
                    ctx.live.after_batch(&ctx, touched);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let Err(e) = result else { continue };
        let wait = if e.code == NOT_LEADER {
            Duration::from_secs(1)
        } else if e.kind == ErrorKind::NotFound {
            // The queue is being created or deleted with its account.
            Duration::from_secs(5)
        } else {
            failures += 1;
            if failures == 1 || failures.is_power_of_two() {
                tracing::warn!(error = %e, failures, "receiving stream events failed; backing off");
            }
            delays.next().unwrap_or(MAX_BACKOFF)
        };
        tokio::time::sleep(wait).await;
    }
    active.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ns: &str, aws_name: &str, arn: bool, stalled: Option<&str>) -> ConfigurationSet {
        let spec = serde_json::json!({"name": aws_name});
        let mut cs = ConfigurationSet::new("orders", serde_json::from_value(spec).expect("spec"));
        cs.metadata.namespace = Some(ns.into());
        let conditions = stalled
            .map(|reason| k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: conditions::STALLED.into(),
                status: "True".into(),
                reason: reason.into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            })
            .into_iter()
            .collect();
        cs.status = Some(crate::api::ConfigurationSetStatus {
            arn: arn.then(|| format!("arn:aws:ses:us-east-1:123456789012:configuration-set/{aws_name}")),
            conditions,
            ..Default::default()
        });
        cs
    }

    fn owner_of(sets: &[ConfigurationSet], aws_name: &str) -> Option<String> {
        let index = owners(sets.iter().map(|cs| ("default".to_string(), cs)));
        index
            .get(&("default".to_string(), aws_name.to_string()))
            .map(Owner::key)
    }

    #[test]
    fn events_count_for_the_object_that_records_the_set_whatever_the_cache_order() {
        let a = set("team-a", "shared-name", true, None);
        let b = set("team-b", "shared-name", false, Some("AlreadyExists"));
        assert_eq!(
            owner_of(&[a.clone(), b.clone()], "shared-name").as_deref(),
            Some("team-a/orders")
        );
        assert_eq!(owner_of(&[b, a], "shared-name").as_deref(), Some("team-a/orders"));
    }

    #[test]
    fn an_object_refused_the_set_never_gets_its_events() {
        // The owner was deleted with Retain: the set is still not B's.
        let b = set("team-b", "shared-name", false, Some("AlreadyExists"));
        assert_eq!(owner_of(&[b], "shared-name"), None);
    }

    #[test]
    fn before_any_status_only_a_lone_claimant_counts() {
        let new = set("team-a", "fresh", false, None);
        assert_eq!(
            owner_of(std::slice::from_ref(&new), "fresh").as_deref(),
            Some("team-a/orders")
        );
        let rival = set("team-b", "fresh", false, None);
        assert_eq!(owner_of(&[new, rival], "fresh"), None);
    }

    #[test]
    fn failed_receives_wait_0_4_s_doubling_to_30_s_with_jitter() {
        let tolerance = Duration::from_millis(1);
        let nominal = [400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000].map(Duration::from_millis);
        for _ in 0..20 {
            for (wait, base) in receive_delays().zip(nominal) {
                // Jitter only lengthens a wait, by less than the wait itself...
                assert!(wait + tolerance >= base, "{wait:?} < {base:?}");
                assert!(wait < base * 2 + tolerance, "{wait:?} >= 2 x {base:?}");
                // ...and never past the cap.
                assert!(wait <= MAX_BACKOFF, "{wait:?}");
            }
        }
    }
}
