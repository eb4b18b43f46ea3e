"""The offline engine behind `make preview`: the Pulumi program under Pulumi's mock engine, no CLI, no cloud.

The program (`__main__.py`, `components/`) never imports this package.
"""
