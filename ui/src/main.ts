import './styles/tokens.css';
import './styles/base.css';

import { mount } from 'svelte';

import App from './App.svelte';
import { adoptAccessToken } from './lib/access-token';

// Before anything renders or calls a command: take the token out of the address bar.
adoptAccessToken();

mount(App, { target: document.getElementById('app')! });
