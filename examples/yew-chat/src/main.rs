//! A chat client in Yew: everything sent to the server's `/chat` room reaches every member, in
//! one order, across reconnects. Serve `dist/` with the reference server and open it.
use durable_ws::typed::Options;
use durable_ws::yew::use_durable_socket;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// The room of the server that served this page.
fn chat_url() -> String {
    let origin = web_sys::window().and_then(|window| window.location().origin().ok()).unwrap_or_default();
    format!("{origin}/chat")
}

#[function_component]
fn Chat() -> Html {
    // Connects after the first render; closes when this component unmounts.
    let chat = use_durable_socket::<String, String>(Options::new(chat_url()));
    let draft = use_node_ref();
    let onsubmit = {
        let (chat, draft) = (chat.clone(), draft.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Some(input) = draft.cast::<HtmlInputElement>() else { return };
            if !input.value().is_empty() {
                // Queued while offline; the returned future resolves once the server has it.
                let _acknowledged = chat.send(input.value());
                input.set_value("");
            }
        })
    };
    html! {
        <>
            <p>
                { "State: " } <span id="state">{ format!("{:?}", chat.state()) }</span>
                { " · unconfirmed: " } <span id="pending">{ chat.stats().pending }</span>
            </p>
            <p id="error">{ chat.error().map(|error| error.to_string()) }</p>
            <ul id="messages">
                { for chat.messages().iter().map(|text| html! { <li>{ text }</li> }) }
            </ul>
            <form {onsubmit}>
                <input id="draft" ref={draft} />
                <button type="submit">{ "Send" }</button>
            </form>
        </>
    }
}

#[function_component]
fn App() -> Html {
    let joined = use_state(|| true);
    let toggle = {
        let joined = joined.clone();
        Callback::from(move |_| joined.set(!*joined))
    };
    html! {
        <>
            <h1>{ "durable-ws · Yew chat" }</h1>
            <button id="toggle" onclick={toggle}>{ if *joined { "Leave" } else { "Join" } }</button>
            if *joined { <Chat /> }
        </>
    }
}

fn main() {
    console_error_panic_hook::set_once();
    yew::Renderer::<App>::new().render();
}
