import t from 'tap';
import { waitFor } from '../helpers/deadline.js';

t.test('waitFor returns the first truthy value', async (t) => {
  let calls = 0;
  const value = await waitFor(() => (++calls >= 3 ? calls : false), { what: 'three calls' });
  t.equal(value, 3);
});
