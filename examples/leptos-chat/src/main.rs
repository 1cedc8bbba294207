//! A chat client in Leptos: everything sent to the server's `/chat` room reaches every member, in
//! one order, across reconnects. Serve `dist/` with the reference server and open it.
use durable_ws::leptos::use_durable_socket;
use durable_ws::typed::Options;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

/// The room of the server that served this page.
fn chat_url() -> String {
    let origin = window().location().origin().unwrap_or_default();
    format!("{origin}/chat")
}

#[component]
fn Chat() -> impl IntoView {
    // Connects now; closes when this component unmounts.
    let chat = use_durable_socket::<String, String>(Options::new(chat_url()));
    let (draft, set_draft) = signal(String::new());
    let submit = move |event: SubmitEvent| {
        event.prevent_default();
        let text = draft.get_untracked();
        if !text.is_empty() {
            // Queued while offline; the returned future resolves once the server has it.
            let _acknowledged = chat.send(text);
            set_draft.set(String::new());
        }
    };
    view! {
        <p>
            "State: " <span id="state">{move || format!("{:?}", chat.state.get())}</span>
            " · unconfirmed: " <span id="pending">{move || chat.stats.get().pending}</span>
        </p>
        <p id="error">{move || chat.error.get().map(|error| error.to_string())}</p>
        <ul id="messages">
            // The latest 1 000 messages (Options::message_history), keyed by their number in the conversation.
            <For
                each=move || {
                    let first = chat.dropped_messages.get();
                    chat.messages.get().into_iter().enumerate().map(move |(i, text)| (first + i as u64, text))
                }
                key=|(number, _)| *number
                children=|(_, text)| view! { <li>{text}</li> }
            />
        </ul>
        <form on:submit=submit>
            <input id="draft" prop:value=draft on:input=move |event| set_draft.set(event_target_value(&event)) />
            <button type="submit">"Send"</button>
        </form>
    }
}

#[component]
fn App() -> impl IntoView {
    let (joined, set_joined) = signal(true);
    view! {
        <h1>"durable-ws · Leptos chat"</h1>
        <button id="toggle" on:click=move |_| set_joined.update(|joined| *joined = !*joined)>
            {move || if joined.get() { "Leave" } else { "Join" }}
        </button>
        <Show when=move || joined.get()>
            <Chat />
        </Show>
    }
}

fn main() {
    console_error_panic_hook::set_once();
    mount_to_body(App);
}
