#include <parley/agent.hpp>

#include <algorithm>
#include <csignal>
#include <future>

#include <boost/asio/post.hpp>

#include <parley/log.hpp>
#include <parley/nlu/classifier.hpp>

namespace parley {

agent::agent(std::string name) : name_(std::move(name)), classifier_(make_default_classifier()) {
  global_fallback_ = [](session& s) { s.reply("Sorry, I didn't get it"); };
}

agent::~agent() {
  stop();
  wait();
}

// ---- definition ------------------------------------------------------------------------------

state& agent::new_state(std::string name, bool initial) {
  if (running_) throw definition_error("agent '" + name_ + "': new_state('" + name +
                                       "') after start(); define every state before running");
  if (name.empty()) throw definition_error("agent '" + name_ + "': a state needs a name");
  if (find_state(name))
    throw definition_error("agent '" + name_ + "' already has a state named '" + name +
                           "'; state names must be unique");
  if (initial)
    for (const auto& s : states_)
      if (s.initial())
        throw definition_error("agent '" + name_ + "': '" + name +
                               "' cannot be initial, '" + s.name() +
                               "' already is; an agent has exactly one initial state");
  return states_.emplace_back(*this, std::move(name), initial);
}

intent& agent::new_intent(std::string name, std::vector<std::string> training_sentences,
                          std::string description) {
  if (running_) throw definition_error("agent '" + name_ + "': new_intent('" + name +
                                       "') after start(); define every intent before running");
  for (const auto& i : intents_)
    if (i.name() == name)
      throw definition_error("agent '" + name_ + "' already has an intent named '" + name +
                             "'; intent names must be unique");
  std::erase_if(training_sentences, [](const std::string& s) {
    return s.find_first_not_of(" \t\r\n") == std::string::npos;
  });
  if (training_sentences.empty())
    throw definition_error("intent '" + name +
                           "' has no training sentence; give it a few ways users say it");
  return intents_.emplace_back(*this, std::move(name), std::move(training_sentences),
                               std::move(description));
}

void agent::set_global_fallback_body(body b) { global_fallback_ = std::move(b); }
void agent::set_error_reply(std::string text) {
  error_reply_ = std::move(text);
  error_reply_set_ = true;
}
void agent::set_intent_classifier(std::shared_ptr<intent_classifier> c) { classifier_ = std::move(c); }
void agent::use_platform(std::shared_ptr<platform> p) { platforms_.push_back(std::move(p)); }
void agent::use_db(std::shared_ptr<db_handler> db) { db_ = std::move(db); }
void agent::set_trace_sink(std::shared_ptr<trace_sink> sink) {
  if (running_)
    throw definition_error("agent '" + name_ +
                           "': set_trace_sink() after start(); set it before running");
  traces_ = std::move(sink);
}
void agent::persist_sessions(bool on) { persist_ = on; }

void agent::set_agent_transport(std::string protocol, std::shared_ptr<agent_transport> t) {
  std::lock_guard lock(transports_mutex_);
  transports_[std::move(protocol)] = std::move(t);
}

std::shared_ptr<agent_transport> agent::find_agent_transport(std::string_view protocol) const {
  std::lock_guard lock(transports_mutex_);
  auto it = transports_.find(protocol);
  return it == transports_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<agent_transport>> agent::agent_transports() const {
  std::lock_guard lock(transports_mutex_);
  std::vector<std::shared_ptr<agent_transport>> all;
  for (const auto& [name, t] : transports_)
    if (t) all.push_back(t);
  return all;
}

const state* agent::find_state(std::string_view name) const {
  for (const auto& s : states_)
    if (s.name() == name) return &s;
  return nullptr;
}

const state& agent::initial_state() const {
  for (const auto& s : states_)
    if (s.initial()) return s;
  throw definition_error("agent '" + name_ +
                         "' has no initial state: pass initial=true to new_state() for the "
                         "state where conversations start");
}

void agent::validate() const {
  if (states_.empty())
    throw definition_error("agent '" + name_ +
                           "' has no states: add one with new_state(name, /*initial=*/true)");
  (void)initial_state();
}

// ---- start and stop --------------------------------------------------------------------------

void agent::train() {
  std::vector<state*> todo;
  for (auto& s : states_)
    if (s.has_intent_transitions()) todo.push_back(&s);
  if (todo.empty()) return;
  const auto t0 = clock::now();
  // One model per state (only its intents compete), trained on every core.
  const std::size_t workers =
      std::min<std::size_t>(todo.size(), std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors(workers);
  std::vector<std::thread> pool;
  for (std::size_t w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      try {
        for (std::size_t i; (i = next.fetch_add(1)) < todo.size();) {
          state& s = *todo[i];
          const auto& classifier = s.classifier() ? s.classifier() : classifier_;
          try {
            s.set_model(classifier->train(std::span<const intent* const>(s.intents()), *this));
          } catch (const definition_error&) {
            throw;
          } catch (const std::exception& ex) {
            // A classifier that cannot use the training data is told a definition mistake.
            throw definition_error("agent '" + name_ + "', state '" + s.name() + "': the " +
                                   std::string(classifier->name()) +
                                   " intent classifier cannot train: " + ex.what());
          }
        }
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  PARLEY_LOG(info, "agent " << name_ << ": trained " << todo.size() << " state model(s) with "
                            << classifier_->name() << " in "
                            << std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count()
                            << " ms");
}

void agent::start() {
  if (running_) throw definition_error("agent '" + name_ + "' is already running");
  set_log_level(parse_log_level(config_.get_string("log.level")));
  for (const auto& k : config_.unknown_keys())
    PARLEY_LOG(warn, "config: unknown key " << k << " (ignored unless the bot reads it)");
  intent_threshold_ = config_.get_double("nlp.intent_threshold");
  if (intent_threshold_ < 0 || intent_threshold_ > 1)
    throw config_error("nlp.intent_threshold must be between 0 and 1, got " +
                       std::to_string(intent_threshold_));
  const auto cap = config_.get_int("agent.queue_capacity");
  if (cap < 1) throw config_error("agent.queue_capacity must be at least 1");
  queue_capacity_ = static_cast<std::size_t>(cap);
  max_auto_moves_ = static_cast<std::uint32_t>(std::max<std::int64_t>(1, config_.get_int("agent.max_auto_moves")));
  check_delay_ = std::chrono::duration_cast<clock::duration>(
      std::chrono::duration<double>(config_.get_double("agent.check_transitions_delay")));
  const double ttl = config_.get_double("agent.session_idle_ttl");
  if (ttl < 0)
    throw config_error("agent.session_idle_ttl must be 0 (never evict) or a number of seconds, "
                       "got " + std::to_string(ttl));
  idle_ttl_ = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(ttl));
  const auto max = config_.get_int("agent.max_sessions");
  if (max < 1) throw config_error("agent.max_sessions must be at least 1, got " + std::to_string(max));
  max_sessions_ = static_cast<std::size_t>(max);
  const auto depth = config_.get_int("agent.max_agent_depth");
  if (depth < 0 || depth > 1000)
    throw config_error("agent.max_agent_depth must be between 0 and 1000, got " +
                       std::to_string(depth));
  max_agent_depth_ = static_cast<int>(depth);
  const auto ids = config_.get_int("agent.agent_message_ids");
  if (ids < 1)
    throw config_error("agent.agent_message_ids must be at least 1, got " + std::to_string(ids));
  agent_message_ids_ = static_cast<std::size_t>(ids);
  const auto dt = config_.get_string("agent.double_texting");
  if (auto p = parse_double_texting(dt))
    double_texting_ = *p;
  else
    throw config_error("agent.double_texting must be enqueue, reject or interrupt, got '" + dt +
                       "' (what a session does with a user message that arrives while it still "
                       "answers the previous one)");
  if (config_.get_bool("agent.persist_sessions")) persist_ = true;
  if (!error_reply_set_) error_reply_ = config_.get_string("agent.error_reply");

  validate();
  train();
  if (persist_ && !db_)
    PARLEY_LOG(warn, "agent " << name_
                              << ": persist_sessions is on but there is no DB handler; "
                                 "sessions will not survive a restart (use --db PATH)");
  if (db_) {
    db_->open(*this);
    // Several nodes: sessions another node took over stop here (their rows are refused anyway).
    db_->on_ownership_lost([this](std::function<bool(std::string_view)> lost) {
      std::vector<std::string> gone;
      {
        std::lock_guard lock(sessions_mutex_);
        for (auto& [id, s] : sessions_)
          if (lost(id)) gone.push_back(id);
      }
      for (auto& id : gone) close_session(id, "moved: another node owns this session now");
    });
    // Sessions whose node died, with timers pending: taken over here (claimed, restored), so
    // their timers fire. Claimed without holding a thread; restored off the DB's thread.
    if (persist_) db_->on_orphaned_sessions([this](std::vector<std::string> orphans) {
      for (auto& orphan : orphans) {
        if (find_session(orphan)) continue;
        async_claim(orphan, [this, id = orphan](std::exception_ptr e) {
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& x) {
              PARLEY_LOG(debug, "agent " << name_ << ": did not take session " << session_tag(id)
                                         << " over: " << x.what());
            }
            return;
          }
          net::post(io_, [this, id] {
            if (find_session(id)) return;
            try {
              get_or_create_session(id, platforms_.empty() ? nullptr : platforms_.front().get());
              PARLEY_LOG(info, "agent " << name_ << ": took session " << session_tag(id)
                                        << " over from a node that stopped (its timers are due)");
            } catch (const std::exception& x) {
              PARLEY_LOG(debug, "agent " << name_ << ": did not take session " << session_tag(id)
                                         << " over: " << x.what());
            }
          });
        });
      }
    });
  }
  if (traces_) traces_->start(*this);

  {
    std::lock_guard lock(stop_mutex_);
    stopped_ = false;
  }
  stopping_ = false;
  io_.restart();
  work_.emplace(io_.get_executor());
  upkeep_.emplace(net::make_strand(io_));
  sweep_timer_ = std::make_unique<net::steady_timer>(*upkeep_);
  wake_timer_ = std::make_unique<net::steady_timer>(*upkeep_);
  if (idle_ttl_ > clock::duration::zero()) net::post(*upkeep_, [this] { arm_sweep(); });
  auto n = config_.get_int("agent.threads");
  if (n <= 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (std::int64_t i = 0; i < n; ++i)
    threads_.emplace_back([this, i] {
      name_this_thread("parley-io-" + std::to_string(i));
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& ex) {
          // Handlers catch their own errors; this is a last line of defence.
          PARLEY_LOG(error, "agent " << name_ << ": a handler threw: " << ex.what());
        }
      }
    });
  running_ = true;
  try {
    for (auto& p : platforms_) p->start(*this);
  } catch (...) {
    stop();
    wait();
    throw;
  }
  PARLEY_LOG(info, "agent " << name_ << " running with " << n << " thread(s)");
}

int agent::run() {
  // Catch the signals before anything is served: a client may send one as soon as it sees
  // the agent answer.
  signals_ = std::make_unique<net::signal_set>(io_, SIGINT, SIGTERM);
  signals_->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    PARLEY_LOG(info, "agent " << name_ << ": " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                              << " received, stopping");
    stop();
  });
  try {
    start();
  } catch (...) {
    signals_.reset();
    throw;
  }
  wait();
  return 0;
}

void agent::stop() {
  if (!running_ || stopping_.exchange(true)) return;
  // The shutdown runs on its own thread: stop() may be called from a worker thread (a signal,
  // a body, a platform) and must not wait there for the work it is waiting on.
  std::lock_guard lock(stop_mutex_);
  stopper_ = std::thread([this] {
    name_this_thread("parley-stop");
    for (auto& p : platforms_) p->stop();
    // Let every session finish what it has queued (bounded: a stuck body cannot hold us).
    auto live = sessions();
    auto remaining = std::make_shared<std::atomic<std::size_t>>(live.size());
    auto m = std::make_shared<std::mutex>();
    auto cv = std::make_shared<std::condition_variable>();
    for (const auto& info : live)
      if (auto s = find_session(info.id))
        s->when_idle([remaining, m, cv] {
          if (remaining->fetch_sub(1) == 1) {
            std::lock_guard l(*m);
            cv->notify_all();
          }
        });
      else
        remaining->fetch_sub(1);
    {
      std::unique_lock l(*m);
      cv->wait_for(l, std::chrono::seconds(3), [&] { return remaining->load() == 0; });
    }
    if (signals_) {
      boost::system::error_code ignored;
      signals_->cancel(ignored);
    }
    net::post(*upkeep_, [this] {
      sweep_timer_->cancel();
      wake_timer_->cancel();
    });
    // After the sessions: the spans of their last turns are queued by now.
    if (traces_) traces_->stop();
    if (db_) {
      try {
        db_->close();
      } catch (const std::exception& ex) {
        PARLEY_LOG(error, "agent " << name_ << ": closing the DB failed: " << ex.what());
      }
    }
    work_.reset();
    io_.stop();
    {
      std::lock_guard l(stop_mutex_);
      stopped_ = true;
    }
    stopped_cv_.notify_all();
  });
}

void agent::wait() {
  {
    std::unique_lock lock(stop_mutex_);
    stopped_cv_.wait(lock, [this] { return stopped_ || !running_; });
  }
  std::lock_guard lock(stop_mutex_);
  if (stopper_.joinable()) stopper_.join();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  signals_.reset();
  if (running_) PARLEY_LOG(info, "agent " << name_ << " stopped");
  running_ = false;
}

// ---- sessions --------------------------------------------------------------------------------

std::shared_ptr<session> agent::get_or_create_session(const std::string& id, platform* p,
                                                       std::string username,
                                                       std::string session_name) {
  std::shared_ptr<session> s;
  if (db_ && !db_->owns(id)) claim(id);  // not ours (any more): see async_claim
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) return it->second;
    if (sessions_.size() >= max_sessions_)
      throw capacity_error("agent '" + name_ + "' already runs " +
                           std::to_string(sessions_.size()) +
                           " sessions (agent.max_sessions); a new session was refused: retry later, "
                           "or raise agent.max_sessions");
    s = std::make_shared<session>(*this, id, p, std::move(username), std::move(session_name));
    sessions_.emplace(id, s);
  }
  start_restore(s);
  return s;
}

void agent::async_claim(const std::string& id, std::function<void(std::exception_ptr)> done) {
  if (!db_ || db_->owns(id)) return done(nullptr);
  // Not ours (any more): a copy still here is stale (this node was paused or cut off past its
  // lease; another may have served it since). Dropped, then claimed and read afresh.
  if (find_session(id)) close_session(id, "moved: this node's lease on it ran out");
  db_->async_claim(id, [id, done = std::move(done)](db_handler::ownership o, std::exception_ptr e) {
    if (e) return done(e);
    if (o.owned) return done(nullptr);
    done(std::make_exception_ptr(
        not_owner_error("session " + session_tag(id) + " is owned by another node (" +
                            (o.address.empty() ? "node " + o.owner.substr(0, 8) : o.address) +
                            "); connect to that node, or route clients by session id",
                        o.owner, o.address)));
  });
}

// The blocking form of async_claim. Several nodes on one database: this process acts for a
// session only once it owns it. The claim is one round trip to the database, made when a
// session comes to life here (a client connects, an event arrives for it); a session owned
// elsewhere is refused with its owner.
void agent::claim(const std::string& id) {
  auto done = std::make_shared<std::promise<void>>();
  auto answer = done->get_future();
  async_claim(id, [done](std::exception_ptr e) {
    if (e) return done->set_exception(e);
    done->set_value();
  });
  if (answer.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    throw db_error("the database did not answer a claim for session " + session_tag(id) +
                   " within 10 s; try again");
  answer.get();  // throws the not_owner_error or db_error
}

// Starts `s` on its strand: at once when it is new, else once its snapshot is read off this
// thread. Until then its queue holds what is posted to it (drain waits for start()).
void agent::start_restore(const std::shared_ptr<session>& s) {
  if (!db_) {
    net::post(s->strand(), [s] { s->start(nullptr); });
    return;
  }
  // Read even when sessions are not persisted: a session that starts afresh under a known id
  // numbers its replies on from the stored ones (chat rows keep (session, seq) unique, and a
  // client's cursor must not go back).
  db_->async_load_session(
      name_, s->id(),
      [this, s, resume = persist_](std::optional<session_snapshot> snap, std::exception_ptr error) {
        if (error) {
          std::string what = "unknown error";
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& ex) {
            what = ex.what();
          } catch (...) {
          }
          if (resume)
            PARLEY_LOG(error, "agent " << name_ << ": cannot restore session " << session_tag(s->id())
                                       << " (" << what << "); starting it afresh");
          else
            PARLEY_LOG(error, "agent " << name_ << ": cannot read the last reply number of session "
                                       << session_tag(s->id()) << " (" << what
                                       << "); numbering its replies from 1");
          snap.reset();
        }
        net::post(s->strand(), [s, snap = std::move(snap), resume] {
          s->start(snap ? &*snap : nullptr, resume);
        });
      });
}

std::shared_ptr<session> agent::find_session(std::string_view id) const {
  std::lock_guard lock(sessions_mutex_);
  auto it = sessions_.find(std::string(id));
  return it == sessions_.end() ? nullptr : it->second;
}

post_result agent::receive_event(std::string_view session_id, event e) {
  if (session_id.empty())
    return post_result::refused("agent '" + name_ +
                                "': receive_event needs a session id; to send an event to every "
                                "session, call broadcast_event");
  auto s = find_session(session_id);
  if (!s && persist_ && db_) {
    // Evicted (or from an earlier run): resumed from the database, as a platform would.
    try {
      s = get_or_create_session(std::string(session_id),
                                platforms_.empty() ? nullptr : platforms_.front().get());
    } catch (const capacity_error& ex) {
      return post_result::refused(ex.what());
    }
  }
  if (!s)
    return post_result::refused("agent '" + name_ + "' has no session '" +
                                std::string(session_id) +
                                "'; sessions are made by a platform when a client connects");
  return s->post(std::move(e));
}

std::size_t agent::broadcast_event(const event& e) {
  std::vector<std::shared_ptr<session>> all;
  {
    std::lock_guard lock(sessions_mutex_);
    all.reserve(sessions_.size());
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  std::size_t n = 0;
  for (auto& s : all) n += s->post(e) ? 1 : 0;
  return n;
}

void agent::close_session(std::string_view id, std::string reason) {
  std::shared_ptr<session> s;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(std::string(id));
    if (it == sessions_.end()) return;
    s = it->second;
    sessions_.erase(it);
  }
  s->close(std::move(reason));
}

void agent::delete_session(std::string_view id, std::function<void()> done) {
  auto s = find_session(id);
  std::string key(id);
  close_session(id, "deleted");
  auto finish = [this, key, done = std::move(done)] {
    if (db_) db_->delete_session(name_, key);
    if (done) done();
  };
  // Delete once the session's current event is handled, so none of its rows come after.
  if (s)
    s->when_idle(std::move(finish));
  else
    finish();
}

void agent::reset_session(std::string_view id,
                          std::function<void(std::shared_ptr<session>)> done) {
  auto s = find_session(id);
  if (!s) {
    // Not live: still reset its stored rows, so it starts fresh when it comes back.
    if (db_) db_->delete_session(name_, id);
    if (done) done(nullptr);
    return;
  }
  // In place, in the session's own order: no gap in which another message could make a
  // second session under the same id.
  s->reset();
  if (done) s->when_idle([s, done = std::move(done)] { done(s); });
}

std::size_t agent::session_count() const {
  std::lock_guard lock(sessions_mutex_);
  return sessions_.size();
}

std::vector<session_info> agent::sessions() const {
  std::lock_guard lock(sessions_mutex_);
  std::vector<session_info> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_)
    out.push_back({id, s->username(), std::string(s->current_state_name()), s->pending_event_count()});
  return out;
}

// ---- session management: stored sessions -------------------------------------------------------

db_handler& agent::require_db(const char* what) const {
  if (!db_)
    throw db_error(std::string(what) + " needs a DB handler: run the agent with --db PATH (or "
                   "call use_db before start)");
  return *db_;
}

std::vector<stored_session> agent::list_sessions(std::string_view username, std::size_t limit,
                                                 std::size_t offset) const {
  return require_db("list_sessions").list_sessions(name_, username, limit, offset);
}

std::shared_ptr<session> agent::fork_session(std::string_view id, const std::string& new_id,
                                             platform* p) {
  auto& db = require_db("fork_session");
  if (find_session(new_id))
    throw db_error("fork_session: agent '" + name_ + "' already has a live session '" + new_id +
                   "'; pick another id");
  // Queued after every row `id` recorded so far, so the copy is what it recorded up to now.
  db.fork_session(name_, id, new_id);
  auto snap = db.load_session(name_, new_id);
  if (!snap) throw db_error("fork_session: the fork '" + new_id + "' vanished before it started");
  if (!p)
    if (auto src = find_session(id)) p = src->platform();
  std::shared_ptr<session> s;
  {
    std::lock_guard lock(sessions_mutex_);
    if (auto it = sessions_.find(new_id); it != sessions_.end())
      return it->second;  // a client came back on that id meanwhile
    if (sessions_.size() >= max_sessions_)
      throw capacity_error("fork_session: agent '" + name_ + "' already runs " +
                           std::to_string(sessions_.size()) +
                           " sessions (agent.max_sessions); the fork is stored and resumes when its "
                           "id comes back");
    auto [it, fresh] = sessions_.try_emplace(new_id);
    s = it->second = std::make_shared<session>(*this, new_id, p, snap->username,
                                               snap->session_name);
  }
  net::post(s->strand(), [s, snap = std::move(*snap)] { s->start(&snap); });
  return s;
}

json agent::export_session(std::string_view id) const {
  return require_db("export_session").export_session(name_, id);
}

std::string agent::import_session(const json& data, const std::string& new_id) {
  auto& db = require_db("import_session");
  std::string id = new_id;
  if (id.empty() && data.is_object() && data.contains("session") && data["session"].is_object())
    id = data["session"].value("session_id", std::string());
  if (!id.empty() && find_session(id))
    throw db_error("import_session: agent '" + name_ + "' already has a live session '" + id +
                   "'; delete it first, or import under another id");
  db.import_session(name_, data, id);
  return id;
}

}  // namespace parley
